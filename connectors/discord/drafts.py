"""Streaming a reply into Discord while the model writes it.

The first :meth:`Drafts.draft` for a chat posts a message; later ones edit it in place,
at most once every ``stream_edit_interval_s`` (Discord allows about five edits per five
seconds in a channel); updates in between are skipped, not queued. A text that outgrows
2000 characters continues in a new message: the parts are cut by
:func:`~connectors.discord.render.split_text`, whose earlier parts stay fixed as the text
grows, so a message once left behind is final.

The next ``send`` of a text to the chat replaces the draft (:meth:`Drafts.finish`): each
draft message is edited into the matching part of the final reply (unchanged ones are not
touched), missing parts are posted after them and surplus draft messages are deleted, so
the chat ends with exactly the final reply, in order. A failure leaves the draft as far as
it got, and the outbox's retry carries on from there. Anything else sent to the chat
first shows the last streamed text in the draft and then lets it stand
(:meth:`Drafts.settle`).

Drafts are best effort: their failures are logged, never raised. Each chat's draft has a
lock, taken by both streaming and the final send, so a message still being posted is
never overtaken.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections import OrderedDict
from dataclasses import dataclass, field

import structlog

from connectors.discord.config import DiscordConfig
from connectors.discord.inbound import NETWORK_ERRORS
from connectors.discord.render import split_text
from connectors.discord.sdk import discord

log = structlog.get_logger("nexflow.connectors.discord")
_CAPACITY = 1024  # chats with a draft in flight; the oldest is forgotten beyond this


@dataclass
class _Posted:
    id: int
    content: str


@dataclass
class _Draft:
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)
    posted: list[_Posted] = field(default_factory=list)
    text: str = ""  # the latest streamed text, shown or not
    at: float = float("-inf")  # when the draft was last updated (monotonic)


class Drafts:
    def __init__(self, config: DiscordConfig) -> None:
        self._config = config
        self._drafts: OrderedDict[str, _Draft] = OrderedDict()

    async def draft(self, channel: discord.PartialMessageable, chat_id: str, text: str) -> None:
        """Show ``text`` (the whole reply so far) in the chat, rate limited."""
        if not self._config.stream_edits or not text.strip():
            return
        draft = self._drafts.get(chat_id)
        if draft is None:
            draft = self._drafts[chat_id] = _Draft()
            while len(self._drafts) > _CAPACITY:
                self._drafts.popitem(last=False)
        draft.text = text
        now = time.monotonic()
        if draft.lock.locked() or now - draft.at < self._config.stream_edit_interval_s:
            return  # an update is in flight or was just made: a later token shows this
        async with draft.lock:
            draft.at = now
            try:
                await self._show(channel, draft, split_text(text))
            except (*NETWORK_ERRORS, discord.HTTPException, discord.RateLimited):
                log.info("discord_draft_failed", chat_id=chat_id, exc_info=True)

    async def finish(
        self,
        channel: discord.PartialMessageable,
        chat_id: str,
        parts: list[str],
        reference: discord.MessageReference | None,
    ) -> bool:
        """Turn the chat's draft into the final reply ``parts``; False when there is no
        draft. Errors propagate; the draft keeps what was done, for the retry."""
        draft = self._drafts.get(chat_id)
        if draft is None:
            return False
        async with draft.lock:
            await self._show(channel, draft, parts, reference, final=True)
            while len(draft.posted) > len(parts):
                await _delete(channel, draft.posted[-1].id)
                draft.posted.pop()
            if self._drafts.get(chat_id) is draft:
                del self._drafts[chat_id]
        return True

    async def settle(self, channel: discord.PartialMessageable, chat_id: str) -> None:
        """Something other than the reply text comes next: show the last streamed text
        in the draft and let it stand."""
        draft = self._drafts.pop(chat_id, None)
        if draft is None:
            return
        async with draft.lock:
            try:
                await self._show(channel, draft, split_text(draft.text))
            except (*NETWORK_ERRORS, discord.HTTPException, discord.RateLimited):
                log.info("discord_draft_failed", chat_id=chat_id, exc_info=True)

    async def _show(
        self,
        channel: discord.PartialMessageable,
        draft: _Draft,
        parts: list[str],
        reference: discord.MessageReference | None = None,
        *,
        final: bool = False,
    ) -> None:
        """Edit the posted messages into ``parts`` and post the parts beyond them."""
        for index, part in enumerate(parts):
            if index < len(draft.posted):
                posted = draft.posted[index]
                if posted.content == part:
                    continue
                try:
                    await channel.get_partial_message(posted.id).edit(content=part)
                except discord.NotFound:
                    if not final:
                        raise
                    # Deleted in the meantime: the reply still has to arrive.
                    message = await channel.send(part)
                    draft.posted[index] = _Posted(message.id, part)
                    continue
                posted.content = part
            else:
                if reference is not None and index == 0:
                    message = await channel.send(part, reference=reference)
                else:
                    message = await channel.send(part)
                draft.posted.append(_Posted(message.id, part))


async def _delete(channel: discord.PartialMessageable, message_id: int) -> None:
    with contextlib.suppress(discord.NotFound):  # already gone
        await channel.get_partial_message(message_id).delete()
