"""The Telegram connector: aiogram 3's ``Bot`` driven by a polling loop this class owns.

Why not ``Dispatcher.start_polling``: it installs signal handlers, runs its own backoff
and has no notion of a stalled ``getUpdates``; here one supervised task polls, a
watchdog deadline (``poll_timeout_s + watchdog_s``) cancels a poll the server never
answers, and network errors back off and reconnect. Updates are confirmed to Telegram
(the next ``getUpdates`` offset) only after the consumer of :meth:`events` has taken
every event of the previous batch, so a crash re-delivers rather than loses messages
(the inbox drops the duplicates by ``external_id``).

Replicas (:class:`~nexflow.gateway.connector.Elected`): after :meth:`elect`, polling runs
only while this process leads ``telegram:<bot id>`` (Telegram allows one ``getUpdates``
per bot token); the other replicas wait and one takes over when the leader dies, starting
from the last offset the leader confirmed (updates it took but had not confirmed come
again, and the shared inbox drops them by ``external_id``). Webhook mode is not elected:
every replica can receive the webhook. Sending works on every replica.

Errors: ``send`` raises :class:`~nexflow.gateway.connector.DeliveryError` (403 and 400
are final; 429 carries ``retry_after_s``; network and 5xx are retryable; see
:mod:`connectors.telegram.outbound`). Nothing else escapes this module.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections import OrderedDict
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import structlog
from aiogram import Bot
from aiogram.client.session.aiohttp import AiohttpSession
from aiogram.client.telegram import TelegramAPIServer
from aiogram.exceptions import (
    AiogramError,
    TelegramRetryAfter,
    TelegramUnauthorizedError,
)
from aiogram.types import (
    CallbackQuery,
    Message,
    Update,
)

from connectors.telegram.config import TelegramConfig
from connectors.telegram.inbound import (
    BotIdentity,
    access,
    callback_event,
    message_event,
)
from connectors.telegram.manifest import MANIFEST
from connectors.telegram.outbound import Delivery, remember
from connectors.telegram.render import ActionTokens, callback_message
from connectors.telegram.webhook import WebhookApp
from nexflow.backoff import Backoff
from nexflow.bus.events import InboundEvent, Outbound
from nexflow.gateway.connector import ConnectorManifest, DeliveryError, handed_out
from nexflow.scale.leader import Leadership, Term, lead
from nexflow.web.hooks import WebRoute

log = structlog.get_logger("nexflow.telegram")

NOT_ALLOWED = "Sorry, this bot is private. Your Telegram id is {id}; ask its owner to add it."
_UPDATES = ["message", "callback_query"]


@dataclass
class PollHealth:
    """Counters for tests and ``/status``: polls answered, stalls caught, restarts."""

    polls: int = 0
    stalls: int = 0
    restarts: int = 0
    last_ok: float = 0.0


class PollStalled(Exception):
    pass


class TelegramConnector:
    """``files_dir`` receives downloaded attachments (``<chat id>/<message id>-<name>``)."""

    def __init__(self, config: TelegramConfig, files_dir: Path, channel: str = "telegram") -> None:
        self._config = config
        self._files_dir = files_dir
        self._channel = channel
        self._bot: Bot | None = None
        self._me: BotIdentity | None = None
        self._queue: asyncio.Queue[InboundEvent] = asyncio.Queue(config.queue_size)
        self._stopped = asyncio.Event()
        self._supervisor: asyncio.Task[None] | None = None
        self._tasks: set[asyncio.Task[None]] = set()  # typing indicators
        self._typing: dict[str, asyncio.Task[None]] = {}
        self._delivery: Delivery | None = None  # exists while started
        self._told: OrderedDict[int, None] = OrderedDict()
        self._tokens = ActionTokens()
        self._offset: int | None = None
        self._leadership: Leadership | None = None
        self.health = PollHealth()

    @property
    def manifest(self) -> ConnectorManifest:
        return MANIFEST

    @property
    def bot(self) -> Bot:
        if self._bot is None:
            raise DeliveryError("the Telegram connector is not started")
        return self._bot

    # -- lifecycle ---------------------------------------------------------------------

    async def start(self) -> None:
        """Returns at once; connecting (and retrying) happens in the supervised task."""
        config = self._config
        api = TelegramAPIServer.from_base(config.api_server) if config.api_server else None
        session = AiohttpSession(api=api) if api else AiohttpSession()
        session.timeout = config.request_timeout_s
        self._bot = Bot(config.bot_token.get_secret_value(), session=session)
        self._delivery = Delivery(self._bot, config, self._tokens)
        self._stopped.clear()
        receiving = (
            self._supervise()
            if self._leadership is None or config.mode == "webhook"
            else lead(self._leadership, self.poller_name, self._poll_while_leading, self._stopped)
        )
        self._supervisor = asyncio.create_task(receiving, name="nexflow-telegram")

    async def stop(self) -> None:
        self._stopped.set()
        tasks = [*self._tasks, *([self._supervisor] if self._supervisor else [])]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        self._supervisor = None
        if self._bot is not None:
            await self._bot.session.close()
            self._bot = self._delivery = None

    async def events(self) -> AsyncIterator[InboundEvent]:
        async with contextlib.aclosing(handed_out(self._queue, self._stopped)) as queued:
            async for event in queued:
                yield event  # the queue's task_done follows: the event is published

    def elect(self, leadership: Leadership) -> None:
        """Poll only while leading :attr:`poller_name` among the replicas (see the
        module docstring); call before :meth:`start`."""
        self._leadership = leadership

    @property
    def poller_name(self) -> str:
        """The election polling takes part in: ``telegram:<bot id>`` (the token's id)."""
        return "telegram:" + self._config.bot_token.get_secret_value().split(":", 1)[0]

    async def _poll_while_leading(self, term: Term) -> None:
        log.info("telegram_poller_elected", name=term.name)
        self._offset = None  # the last leader may have confirmed more: start from Telegram's
        await self._supervise()

    @property
    def ready(self) -> bool:
        """Started and connected (``getMe`` answered): updates can be handled."""
        return self._bot is not None and self._me is not None

    def webhook_app(self) -> WebhookApp:
        """A pure ASGI app for ``mode: webhook``; served at ``webhook_url``'s path."""
        secret = self._config.webhook_secret
        return WebhookApp(self, secret.get_secret_value() if secret else "")

    def web_routes(self) -> tuple[WebRoute, ...]:
        """In webhook mode, the webhook on the gateway's own HTTP server
        (:class:`~nexflow.web.hooks.ServesWeb`); none when polling."""
        if self._config.mode != "webhook":
            return ()
        return (WebRoute(self._config.webhook_path, self.webhook_app()),)

    # -- receiving ---------------------------------------------------------------------

    async def _supervise(self) -> None:
        backoff = Backoff(self._config.backoff_initial_s, self._config.backoff_max_s)
        failures = 0  # in a row
        while not self._stopped.is_set():
            started = time.monotonic()
            wait = 0.0
            try:
                await self._connect()
                if self._config.mode == "webhook":
                    return
                await self._poll()
            except TelegramRetryAfter as exc:
                log.warning("telegram_flood_control", retry_after=exc.retry_after)
                wait = float(exc.retry_after)
            except TelegramUnauthorizedError:
                log.error("telegram_token_rejected", hint="check connectors.telegram.bot_token")
                wait = self._config.backoff_max_s
            except PollStalled:
                log.warning("telegram_poll_stalled", stalls=self.health.stalls)
            except (AiogramError, OSError) as exc:
                log.warning("telegram_poll_failed", error=type(exc).__name__, detail=str(exc))
            except Exception:
                log.exception("telegram_poll_crashed")
            self.health.restarts += 1
            if self.health.last_ok > started:  # it was working: the first retry is quick
                failures = 0
            failures += 1
            # Flood control's retry_after (or a rejected token's long wait) is a floor.
            await asyncio.sleep(max(wait, backoff.delay(failures)))

    async def _connect(self) -> None:
        bot = self.bot
        if self._me is None:
            me = await bot.get_me()
            self._me = BotIdentity(me.id, me.username or "")
            log.info("telegram_connected", bot=me.username, mode=self._config.mode)
        if self._config.mode == "webhook":
            secret = self._config.webhook_secret
            await bot.set_webhook(
                str(self._config.webhook_url),
                secret_token=secret.get_secret_value() if secret else None,
                allowed_updates=_UPDATES,
            )
        else:
            await bot.delete_webhook()

    async def _poll(self) -> None:
        bot, config = self.bot, self._config
        deadline = config.poll_timeout_s + config.watchdog_s
        while True:
            await self._queue.join()  # confirm a batch only once it has been consumed
            try:
                async with asyncio.timeout(deadline):
                    updates = await bot.get_updates(
                        offset=self._offset,
                        timeout=config.poll_timeout_s,
                        allowed_updates=_UPDATES,
                        request_timeout=int(deadline) + 5,
                    )
            except TimeoutError as exc:
                self.health.stalls += 1
                raise PollStalled(f"getUpdates unanswered for {deadline:.1f}s") from exc
            self.health.polls += 1
            self.health.last_ok = time.monotonic()
            for update in updates:
                self._offset = update.update_id + 1
                await self.feed(update)

    async def feed(self, update: Update) -> None:
        """Handle one update (from polling or the webhook); a bad one is logged, skipped."""
        try:
            if update.message is not None:
                await self._on_message(update.message)
            elif update.callback_query is not None:
                await self._on_callback(update.callback_query)
        except Exception:
            log.exception("telegram_update_failed", update_id=update.update_id)

    async def _on_message(self, message: Message) -> None:
        me = self._me
        if me is None:
            return
        verdict = access(self._config, message.chat, message.from_user)
        if verdict == "ignore":
            return
        if verdict == "reject" and self._config.unknown_users == "reject":
            await self._tell_not_allowed(message)
            return
        event = await message_event(
            self.bot,
            message,
            me,
            self._config,
            self._files_dir,
            self._channel,
            allowlisted=verdict == "listed",
        )
        if event is None:
            return
        if message.chat.type != "private":
            self._delivery_or_fail().remember_reply(event.id, message.message_id)
        await self._queue.put(event)
        if self._config.typing:
            self.typing(event.chat_id)

    async def _on_callback(self, query: CallbackQuery) -> None:
        message = query.message
        if message is None:
            return
        verdict = access(self._config, message.chat, query.from_user)
        command = callback_message(query.data or "", self._tokens)
        if verdict == "ignore" or (verdict == "reject" and self._config.unknown_users == "reject"):
            await self._answer(query, "You are not allowed to use this bot.")
            return
        if command is None:
            await self._answer(query, "This button has expired.")
            return
        await self._answer(query, "")
        event = callback_event(query, command, self._channel, allowlisted=verdict == "listed")
        if event is None:
            return
        if message.chat.type == "private" and command.startswith(
            ("/confirm", "/cancel", "/accept", "/reject")
        ):
            with contextlib.suppress(AiogramError):  # only they could press it: done with it
                await self.bot.edit_message_reply_markup(
                    chat_id=message.chat.id, message_id=message.message_id, reply_markup=None
                )
        await self._queue.put(event)

    async def _answer(self, query: CallbackQuery, text: str) -> None:
        try:
            await self.bot.answer_callback_query(query.id, text=text or None)
        except AiogramError as exc:
            log.info("telegram_callback_answer_failed", error=str(exc))

    async def _tell_not_allowed(self, message: Message) -> None:
        user = message.from_user
        if user is None or user.id in self._told:
            return
        remember(self._told, user.id, None)
        log.info("telegram_sender_not_allowed", sender_id=user.id)
        try:
            await self.bot.send_message(message.chat.id, NOT_ALLOWED.format(id=user.id))
        except AiogramError as exc:
            log.info("telegram_not_allowed_notice_failed", error=str(exc))

    # -- typing and streamed drafts ------------------------------------------------------

    def typing(self, chat_id: str) -> None:
        """Show "typing…" in the chat until something is sent there (or ``typing_max_s``)."""
        if chat_id in self._typing or self._bot is None or len(self._typing) >= 256:
            return
        task = asyncio.create_task(self._keep_typing(chat_id), name=f"telegram-typing-{chat_id}")
        self._typing[chat_id] = task
        self._tasks.add(task)

        def done(finished: asyncio.Task[None]) -> None:
            self._tasks.discard(finished)
            if self._typing.get(chat_id) is finished:
                del self._typing[chat_id]

        task.add_done_callback(done)

    def stop_typing(self, chat_id: str) -> None:
        """Stop "typing…" (also done by ``send``; the gateway calls it for a silent refusal)."""
        task = self._typing.pop(chat_id, None)
        if task is not None:
            task.cancel()

    async def _keep_typing(self, chat_id: str) -> None:
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(self._config.typing_max_s):
                while True:  # Telegram shows an action for 5 s
                    try:
                        await self.bot.send_chat_action(int(chat_id), "typing")
                    except AiogramError as exc:
                        log.debug("telegram_typing_failed", error=str(exc))
                        return
                    await asyncio.sleep(4.0)

    async def draft(self, chat_id: str, text: str) -> None:
        """Show a partial reply, edited in place at most every ``stream_edit_interval_s``;
        the next :meth:`send` to the chat turns the draft into the final message."""
        self.stop_typing(chat_id)
        await self._delivery_or_fail().draft(chat_id, text)

    async def send(self, out: Outbound) -> None:
        self.stop_typing(out.chat_id)
        await self._delivery_or_fail().send(out)

    def _delivery_or_fail(self) -> Delivery:
        if self._delivery is None:
            raise DeliveryError("the Telegram connector is not started")
        return self._delivery
