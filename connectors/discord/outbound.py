"""What goes out to Discord: typed outbound as messages, and discord.py's errors as
:class:`DeliveryError`.

Text goes in 2000-character parts (streamed replies replace their draft, see
:mod:`connectors.discord.drafts`), panels / confirmations as embeds with buttons, patch
reviews as an embed with the diff, files as attachments. Forbidden / NotFound / other
4xx are permanent, rate limits carry ``retry_after_s``, 5xx and network errors are
retryable. A text cut in parts resumes after the last part delivered when the outbox
retries it.
"""

from __future__ import annotations

import asyncio
import hashlib
from collections import OrderedDict
from pathlib import Path
from typing import Any

from connectors.discord import render
from connectors.discord.drafts import Drafts
from connectors.discord.inbound import NETWORK_ERRORS
from connectors.discord.sdk import discord
from nexflow.bus.events import (
    ConfirmationOut,
    FileOut,
    Outbound,
    PanelSnapshotOut,
    PatchReviewOut,
    TextOut,
)
from nexflow.gateway.connector import DeliveryError


class Sender:
    """Sends one :data:`Outbound` to a channel, replacing the chat's draft if any."""

    def __init__(self, drafts: Drafts) -> None:
        self._drafts = drafts
        self._partial: OrderedDict[str, int] = OrderedDict()  # text key -> parts delivered

    async def send(self, channel: discord.PartialMessageable, out: Outbound) -> None:
        reference = None
        if out.reply_to and out.reply_to.isdigit():
            reference = discord.MessageReference(
                message_id=int(out.reply_to), channel_id=channel.id, fail_if_not_exists=False
            )
        try:
            if not isinstance(out, TextOut):
                await self._drafts.settle(channel, str(channel.id))
            match out:
                case TextOut():
                    parts = render.split_text(out.text)
                    if not await self._drafts.finish(channel, str(channel.id), parts, reference):
                        await self._send_parts(channel, out, parts, reference)
                case PanelSnapshotOut():
                    await self._send_one(channel, render.panel(out), reference)
                case ConfirmationOut():
                    await self._send_one(channel, render.confirmation(out), reference)
                case PatchReviewOut():
                    await self._send_one(channel, render.patch_review(out), reference)
                case FileOut():
                    await self._send_file(channel, out, reference)
        except discord.RateLimited as exc:
            raise DeliveryError("discord rate limit", retry_after_s=exc.retry_after) from exc
        except discord.HTTPException as exc:
            raise delivery_error(exc) from exc
        except NETWORK_ERRORS as exc:
            raise DeliveryError(f"network error talking to discord: {type(exc).__name__}") from exc

    async def _send_parts(
        self,
        channel: discord.PartialMessageable,
        out: TextOut,
        parts: list[str],
        reference: discord.MessageReference | None,
    ) -> None:
        key = hashlib.sha256(out.model_dump_json().encode()).hexdigest()
        done = self._partial.pop(key, 0)
        for index in range(done, len(parts)):
            options = _options(reference if index == 0 else None)
            try:
                await channel.send(parts[index], **options)
            except BaseException:
                if index:  # a retry resumes after the parts already delivered
                    self._partial[key] = index
                    while len(self._partial) > 1024:
                        self._partial.popitem(last=False)
                raise

    async def _send_one(
        self,
        channel: discord.PartialMessageable,
        rendered: render.Rendered,
        reference: discord.MessageReference | None,
    ) -> None:
        options = _options(reference)
        if rendered.embed is not None:
            options["embed"] = rendered.embed
        if rendered.view is not None:
            options["view"] = rendered.view
        if rendered.files:
            options["files"] = rendered.files
        await channel.send(rendered.content, **options)

    async def _send_file(
        self,
        channel: discord.PartialMessageable,
        out: FileOut,
        reference: discord.MessageReference | None,
    ) -> None:
        path = Path(out.path)
        try:
            file = await asyncio.to_thread(discord.File, path, filename=path.name)
        except OSError as exc:
            reason = f"cannot read the file to send ({path.name}): {type(exc).__name__}"
            raise DeliveryError(reason, retryable=False) from exc
        caption = render.split_text(out.caption)
        try:
            await channel.send(caption[0] if caption else None, file=file, **_options(reference))
        finally:
            file.close()


def _options(reference: discord.MessageReference | None) -> dict[str, Any]:
    return {"reference": reference} if reference is not None else {}


def delivery_error(exc: discord.HTTPException) -> DeliveryError:
    """Translate a discord.py HTTP error into the outbox's terms."""
    reason = f"discord {exc.status}: {exc.text or type(exc).__name__}"
    if isinstance(exc, discord.Forbidden | discord.NotFound):
        return DeliveryError(reason, retryable=False)  # no access, unknown channel, DMs off
    if exc.status == 429:
        after = exc.response.headers.get("Retry-After")
        return DeliveryError(reason, retry_after_s=float(after) if after else None)
    return DeliveryError(reason, retryable=exc.status >= 500)
