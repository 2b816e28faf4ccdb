"""Delivering typed outbound through the Bot API: HTML chunks in order, keyboards,
documents, streamed drafts; aiogram errors become :class:`DeliveryError`.

A reply split into several messages remembers how many went out, so the outbox's retry
after a failure in the middle resumes there instead of repeating the first ones.
"""

from __future__ import annotations

import asyncio
import hashlib
import time
from collections import OrderedDict
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

import structlog
from aiogram import Bot
from aiogram.exceptions import (
    AiogramError,
    TelegramAPIError,
    TelegramBadRequest,
    TelegramEntityTooLarge,
    TelegramForbiddenError,
    TelegramMigrateToChat,
    TelegramNotFound,
    TelegramRetryAfter,
    TelegramUnauthorizedError,
)
from aiogram.types import FSInputFile, InlineKeyboardMarkup, ReplyParameters

from connectors.telegram.config import TelegramConfig
from connectors.telegram.format import CAPTION_LIMIT, markdown_to_html, split_html, to_plain
from connectors.telegram.render import ActionTokens, Rendered, render
from nexflow.bus.events import FileOut, Outbound
from nexflow.gateway.connector import DeliveryError

log = structlog.get_logger("nexflow.telegram")
K = TypeVar("K")
V = TypeVar("V")


@dataclass
class _Draft:
    message_id: int
    html: str
    at: float


def delivery_error(exc: Exception) -> DeliveryError:
    """Translate an aiogram error into the outbox's terms."""
    reason = exc.message if isinstance(exc, TelegramAPIError) else type(exc).__name__
    match exc:
        case TelegramRetryAfter():
            return DeliveryError(
                f"Telegram flood control: {reason}", retry_after_s=float(exc.retry_after)
            )
        case TelegramMigrateToChat():
            return DeliveryError(
                f"group moved to {exc.migrate_to_chat_id}: {reason}", retryable=False
            )
        case TelegramForbiddenError() | TelegramBadRequest() | TelegramNotFound():
            return DeliveryError(f"Telegram refused: {reason}", retryable=False)
        case TelegramEntityTooLarge():
            return DeliveryError(f"Telegram refused: {reason}", retryable=False)
        case TelegramUnauthorizedError():
            return DeliveryError("Telegram rejected the bot token (connectors.telegram)")
        case _:
            return DeliveryError(f"Telegram unreachable: {reason}")


class Delivery:
    """Sends for one ``Bot``; ``remember_reply`` maps an event id to its Telegram message
    so that a group reply can answer it."""

    def __init__(self, bot: Bot, config: TelegramConfig, tokens: ActionTokens) -> None:
        self._bot = bot
        self._config = config
        self._tokens = tokens
        self._drafts: OrderedDict[str, _Draft] = OrderedDict()
        self._progress: OrderedDict[str, int] = OrderedDict()  # chunks already delivered
        self._replies: OrderedDict[str, int] = OrderedDict()  # event id → message id

    def remember_reply(self, event_id: str, message_id: int) -> None:
        remember(self._replies, event_id, message_id)

    async def draft(self, chat_id: str, text: str) -> None:
        """Show a partial reply, edited in place at most every ``stream_edit_interval_s``;
        the next :meth:`send` to the chat turns the draft into the final message."""
        if not self._config.stream_edits or not text.strip():
            return
        current = self._drafts.get(chat_id)
        now = time.monotonic()
        if current is not None and now - current.at < self._config.stream_edit_interval_s:
            return
        html = (split_html(markdown_to_html(text)) or [""])[0]
        try:
            if current is None:
                sent = await self._bot.send_message(int(chat_id), html, parse_mode="HTML")
                remember(self._drafts, chat_id, _Draft(sent.message_id, html, now))
            elif html != current.html:
                await self._bot.edit_message_text(
                    html, chat_id=int(chat_id), message_id=current.message_id, parse_mode="HTML"
                )
                current.html, current.at = html, now
        except AiogramError as exc:
            log.info("telegram_draft_failed", error=str(exc))

    async def send(self, out: Outbound) -> None:
        bot = self._bot
        try:
            chat_id = int(out.chat_id)
        except ValueError as exc:
            raise DeliveryError(
                f"not a Telegram chat id: {out.chat_id!r}", retryable=False
            ) from exc
        try:
            if isinstance(out, FileOut):
                await self._send_file(bot, chat_id, out)
            else:
                await self._send_rendered(bot, chat_id, out)
        except (AiogramError, OSError) as exc:
            raise delivery_error(exc) from exc

    async def _send_rendered(self, bot: Bot, chat_id: int, out: Outbound) -> None:
        rendered = render(out, self._tokens)
        key = _key(out.chat_id, rendered)
        done = self._progress.get(key, 0)  # a retry resumes after the chunks that went out
        draft = self._drafts.get(out.chat_id)
        reply_to = self._replies.get(out.reply_to or "")
        for index in range(done, len(rendered.chunks)):
            chunk = rendered.chunks[index]
            last = index == len(rendered.chunks) - 1
            markup = rendered.markup if last else None
            if index == 0 and draft is not None:
                await self._finish_draft(bot, chat_id, draft, chunk, rendered)
            else:
                reply = (
                    ReplyParameters(message_id=reply_to, allow_sending_without_reply=True)
                    if reply_to is not None and index == 0
                    else None
                )
                await self._send_chunk(bot, chat_id, chunk, markup, reply)
            remember(self._progress, key, index + 1)
        self._progress.pop(key, None)
        if draft is not None:
            self._drafts.pop(out.chat_id, None)

    async def _send_chunk(
        self,
        bot: Bot,
        chat_id: int,
        chunk: str,
        keyboard: InlineKeyboardMarkup | None,
        reply: ReplyParameters | None,
    ) -> None:
        try:
            await bot.send_message(
                chat_id, chunk, parse_mode="HTML", reply_markup=keyboard, reply_parameters=reply
            )
        except TelegramBadRequest as exc:
            if "parse entities" not in exc.message:
                raise
            log.warning("telegram_html_refused", error=exc.message)  # a formatter bug: say so
            await bot.send_message(
                chat_id, to_plain(chunk), reply_markup=keyboard, reply_parameters=reply
            )

    async def _finish_draft(
        self, bot: Bot, chat_id: int, draft: _Draft, chunk: str, rendered: Rendered
    ) -> None:
        markup = rendered.markup if len(rendered.chunks) == 1 else None
        try:
            await bot.edit_message_text(
                chunk,
                chat_id=chat_id,
                message_id=draft.message_id,
                parse_mode="HTML",
                reply_markup=markup,
            )
        except TelegramBadRequest as exc:
            if "not modified" in exc.message:
                return
            log.info("telegram_draft_finish_failed", error=exc.message)
            await self._send_chunk(bot, chat_id, chunk, markup, None)

    async def _send_file(self, bot: Bot, chat_id: int, out: FileOut) -> None:
        path = Path(out.path)
        if not await asyncio.to_thread(path.is_file):
            raise DeliveryError(f"file not found: {path.name}", retryable=False)
        captions = split_html(markdown_to_html(out.caption), CAPTION_LIMIT)
        caption = captions[0] if len(captions) == 1 else None
        await bot.send_document(
            chat_id, FSInputFile(path), caption=caption, parse_mode="HTML" if caption else None
        )
        if len(captions) > 1:
            for chunk in split_html(markdown_to_html(out.caption)):
                await self._send_chunk(bot, chat_id, chunk, None, None)


def _key(chat_id: str, rendered: Rendered) -> str:
    digest = hashlib.sha256("\x00".join((chat_id, *rendered.chunks)).encode()).hexdigest()
    return digest[:32]


def remember(cache: OrderedDict[K, V], key: K, value: V, capacity: int = 4096) -> None:
    cache[key] = value
    cache.move_to_end(key)
    if len(cache) > capacity:
        cache.popitem(last=False)
