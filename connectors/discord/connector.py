"""The Discord connector: a discord.py client in a task this connector owns.

Inbound: server messages (in ``guild_id``, in the mapped ``channels``, from members with
one of ``allowed_roles``, mentioning the bot when ``mention_only``) and DMs become
:class:`InboundEvent`; attachments are saved under ``download_dir``; button clicks
become ``/confirm <id>``, ``/cancel <id>`` or ``/press <action>`` events.

Outbound: text in 2000-character parts, panels / confirmations as embeds with buttons,
patch reviews as an embed with the diff, files as attachments. Failures are raised as
:class:`DeliveryError`: Forbidden / NotFound / other 4xx are permanent, rate limits carry
``retry_after_s``, 5xx and network errors are retryable. A text cut in parts resumes
after the last part delivered when the outbox retries it.

Connection: discord.py reconnects and RESUMEs the gateway by itself; the owned task
restarts the client with backoff when it gives up (for example when Discord is
unreachable at start), and stops for good on a rejected token.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import re
from collections import OrderedDict
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import structlog
import yarl

from connectors.discord import render
from connectors.discord.config import DiscordConfig
from connectors.discord.manifest import MANIFEST
from connectors.discord.sdk import discord, gateway, http
from nexflow.bus.events import (
    Attachment,
    ConfirmationOut,
    FileOut,
    InboundEvent,
    Outbound,
    PanelSnapshotOut,
    PatchReviewOut,
    TextOut,
)
from nexflow.gateway.connector import ConnectorManifest, DeliveryError

log = structlog.get_logger("nexflow.connectors.discord")

CHANNEL = "discord"
_UNSAFE_NAME = re.compile(r"[^A-Za-z0-9._-]+")
_NETWORK_ERRORS = (OSError, aiohttp.ClientError, asyncio.TimeoutError)


class _Client(discord.Client):
    """discord.py calls ``on_<event>`` methods; these forward to the connector's handlers."""

    def __init__(self, connector: DiscordConnector, **options: Any) -> None:
        super().__init__(**options)
        self._nexflow = connector

    async def on_ready(self) -> None:
        self._nexflow._ready.set()
        log.info("discord_ready", user=str(self.user), guilds=len(self.guilds))

    async def on_resumed(self) -> None:
        log.info("discord_resumed")

    async def on_message(self, message: discord.Message) -> None:
        await self._nexflow._on_message(self, message)

    async def on_interaction(self, interaction: discord.Interaction) -> None:
        await self._nexflow._on_interaction(self, interaction)


class DiscordConnector:
    def __init__(self, config: DiscordConfig, download_dir: Path, *, queue_size: int = 256) -> None:
        self._config = config
        self._download_dir = download_dir
        self._queue: asyncio.Queue[InboundEvent | None] = asyncio.Queue(queue_size)
        self._client: _Client | None = None
        self._task: asyncio.Task[None] | None = None
        self._ready = asyncio.Event()
        self._stopped = asyncio.Event()
        self._saved_endpoints: tuple[str, yarl.URL] | None = None
        self._channel_names = {cid: name for name, cid in config.channels.items()}
        self._roles = frozenset(config.allowed_roles)
        self._partial: OrderedDict[str, int] = OrderedDict()  # text key -> parts delivered

    @property
    def manifest(self) -> ConnectorManifest:
        return MANIFEST

    # -- lifecycle --------------------------------------------------------------------

    async def start(self) -> None:
        """Start the client in the background; :meth:`wait_ready` waits for READY."""
        if self._task is not None:
            return
        self._point_at_endpoints()
        self._stopped.clear()
        self._ready.clear()
        self._queue = asyncio.Queue(self._queue.maxsize)
        self._download_dir.mkdir(parents=True, exist_ok=True)
        self._task = asyncio.create_task(self._run(), name="nexflow-discord")

    async def stop(self) -> None:
        self._stopped.set()
        if self._client is not None:
            await self._client.close()
        if self._task is not None:
            try:
                await asyncio.wait_for(self._task, 10)
            except TimeoutError:
                log.warning("discord_stop_timeout")
            self._task = None
        self._client = None
        self._restore_endpoints()
        while True:  # end events(); unpublished events are lost with the process anyway
            try:
                self._queue.put_nowait(None)
                break
            except asyncio.QueueFull:
                self._queue.get_nowait()

    async def wait_ready(self, within_s: float = 10.0) -> None:
        async with asyncio.timeout(within_s):
            await self._ready.wait()

    def _point_at_endpoints(self) -> None:
        # discord.py keeps its REST base and gateway URL in class attributes (process-wide
        # state). They are changed only when configured, in this one place, and restored on
        # stop; tests point them at nexflow.testing.fake_discord.
        if self._config.api_base is None and self._config.gateway_url is None:
            return
        self._saved_endpoints = (http.Route.BASE, gateway.DiscordWebSocket.DEFAULT_GATEWAY)
        if self._config.api_base is not None:
            http.Route.BASE = self._config.api_base.rstrip("/")
        if self._config.gateway_url is not None:
            gateway.DiscordWebSocket.DEFAULT_GATEWAY = yarl.URL(self._config.gateway_url)

    def _restore_endpoints(self) -> None:
        if self._saved_endpoints is not None:
            http.Route.BASE, gateway.DiscordWebSocket.DEFAULT_GATEWAY = self._saved_endpoints
            self._saved_endpoints = None

    def _new_client(self) -> _Client:
        intents = discord.Intents.none()
        intents.guilds = intents.guild_messages = intents.dm_messages = True
        intents.message_content = True  # privileged: enable it in the developer portal
        return _Client(
            self,
            intents=intents,
            chunk_guilds_at_startup=False,
            max_ratelimit_timeout=self._config.max_ratelimit_wait_s,
            guild_ready_timeout=self._config.guild_ready_timeout_s,
            allowed_mentions=discord.AllowedMentions.none(),
        )

    async def _run(self) -> None:
        """Supervise the client: discord.py reconnects the gateway itself; when it gives up
        (or cannot log in because Discord is unreachable) a new client is started after a
        backoff. A rejected token or a missing intent stops it for good."""
        backoff = 1.0
        token = self._config.bot_token.get_secret_value()
        while not self._stopped.is_set():
            client = self._client = self._new_client()
            try:
                await client.start(token)  # returns when closed
            except discord.LoginFailure:
                log.error("discord_login_failed", hint="check connectors.discord.bot_token")
                return
            except discord.PrivilegedIntentsRequired:
                log.error(
                    "discord_intents_required",
                    hint="enable the Message Content intent for the bot in the developer portal",
                )
                return
            except Exception:
                if self._stopped.is_set():
                    return  # closed under a request in flight
                log.warning("discord_client_failed", retry_in_s=backoff, exc_info=True)
            finally:
                await client.close()
            if self._ready.is_set():  # it had been connected: start the backoff afresh
                self._ready.clear()
                backoff = 1.0
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(backoff):
                    await self._stopped.wait()
            backoff = min(backoff * 2, 60.0)

    # -- inbound ----------------------------------------------------------------------

    async def events(self) -> AsyncIterator[InboundEvent]:
        while (event := await self._queue.get()) is not None:
            yield event

    def _listened(self, channel: Any) -> bool:
        if not self._channel_names:
            return True
        ids = {getattr(channel, "id", None), getattr(channel, "parent_id", None)}
        return any(str(i) in self._channel_names for i in ids if i is not None)

    async def _permitted(self, client: _Client, user: discord.abc.User) -> bool:
        """``allowed_roles``: a server member needs one of them (by name or id); a DM
        sender must be such a member of ``guild_id`` (without ``guild_id``, DMs pass)."""
        if not self._roles:
            return True
        member = user if isinstance(user, discord.Member) else None
        if member is None:
            if self._config.guild_id is None:
                return True
            guild = client.get_guild(int(self._config.guild_id))
            if guild is None:
                return False
            member = guild.get_member(user.id)
            if member is None:
                try:
                    member = await guild.fetch_member(user.id)
                except discord.NotFound:
                    return False
                except (*_NETWORK_ERRORS, discord.HTTPException):
                    log.warning("discord_member_lookup_failed", user_id=user.id, exc_info=True)
                    return False
        return any(r.name in self._roles or str(r.id) in self._roles for r in member.roles)

    def _role_verified(self, guild: discord.Guild | None) -> bool:
        """Whether :meth:`_permitted` checked a role (the sender counts as approved)."""
        return bool(self._roles) and (guild is not None or self._config.guild_id is not None)

    def _in_scope(self, guild: discord.Guild | None, channel: Any) -> bool:
        if guild is None:
            return True
        if self._config.guild_id is not None and str(guild.id) != self._config.guild_id:
            return False
        return self._listened(channel)

    def _addressed(self, client: _Client, message: discord.Message) -> str | None:
        """The text meant for the bot, or None when a server message does not address it."""
        me = client.user
        text = message.content
        if message.guild is None or not self._config.mention_only:
            mentioned = True
        else:
            mentioned = me is not None and me in message.mentions
            ref = message.reference.resolved if message.reference else None
            if isinstance(ref, discord.Message) and me is not None and ref.author.id == me.id:
                mentioned = True
        if not mentioned:
            return None
        if me is not None:
            text = re.sub(rf"<@!?{me.id}>", "", text)
        return text.strip()

    async def _on_message(self, client: _Client, message: discord.Message) -> None:
        if message.author.bot or message.type not in (
            discord.MessageType.default,
            discord.MessageType.reply,
        ):
            return  # the bot's own messages (echoed by Discord), other bots, system notices
        if not self._in_scope(message.guild, message.channel):
            return
        text = self._addressed(client, message)
        if text is None or not (text or message.attachments):
            return
        if not await self._permitted(client, message.author):
            log.info("discord_sender_refused", user_id=message.author.id, reason="allowed_roles")
            return
        attachments, skipped = await self._download(message)
        metadata: dict[str, Any] = {
            "username": message.author.name,
            "display_name": message.author.display_name,
            "dm": message.guild is None,
            "allowlisted": self._role_verified(message.guild),
        }
        if message.guild is not None:
            metadata["guild_id"] = str(message.guild.id)
            name = self._channel_names.get(str(message.channel.id))
            metadata["channel_name"] = name or getattr(message.channel, "name", None)
        if skipped:
            metadata["skipped_attachments"] = skipped
        await self._queue.put(
            InboundEvent(
                channel=CHANNEL,
                chat_id=str(message.channel.id),
                sender_id=str(message.author.id),
                message=text,
                external_id=str(message.id),
                attachments=attachments,
                metadata=metadata,
            )
        )
        await self._typing(message.channel)

    async def _typing(self, channel: discord.abc.Messageable) -> None:
        try:
            await channel.typing()  # shown for ~10 s or until the reply arrives
        except (*_NETWORK_ERRORS, discord.HTTPException):
            log.info("discord_typing_failed", exc_info=True)

    async def _download(self, message: discord.Message) -> tuple[tuple[Attachment, ...], list[str]]:
        saved: list[Attachment] = []
        skipped: list[str] = []
        limit = int(self._config.max_attachment_mb * 1024 * 1024)
        for item in message.attachments:
            if item.size > limit:
                skipped.append(f"{item.filename} (larger than {self._config.max_attachment_mb} MB)")
                continue
            name = _UNSAFE_NAME.sub("_", item.filename).lstrip(".") or "file"
            path = self._download_dir / f"{message.id}-{item.id}-{name}"
            try:
                await item.save(path)
            except (*_NETWORK_ERRORS, discord.HTTPException):
                log.warning("discord_attachment_failed", file=item.filename, exc_info=True)
                skipped.append(f"{item.filename} (download failed)")
                continue
            mime = item.content_type or "application/octet-stream"
            saved.append(Attachment(item.filename, str(path), mime, item.size))
        return tuple(saved), skipped

    async def _on_interaction(self, client: _Client, interaction: discord.Interaction) -> None:
        if interaction.type is not discord.InteractionType.component or not interaction.data:
            return
        command = render.parse_custom_id(str(interaction.data.get("custom_id", "")))
        if command is None:
            return
        channel = interaction.channel
        allowed = self._in_scope(interaction.guild, channel) and await self._permitted(
            client, interaction.user
        )
        try:
            if not allowed:
                await interaction.response.send_message("You can't use this here.", ephemeral=True)
                return
            # Acknowledge within Discord's 3 s; the answer comes as a normal message.
            await interaction.response.defer()
        except (*_NETWORK_ERRORS, discord.HTTPException):
            log.warning("discord_interaction_ack_failed", exc_info=True)
        if not allowed or interaction.channel_id is None:
            return
        await self._queue.put(
            InboundEvent(
                channel=CHANNEL,
                chat_id=str(interaction.channel_id),
                sender_id=str(interaction.user.id),
                message=command,
                external_id=f"interaction:{interaction.id}",
                metadata={
                    "username": interaction.user.name,
                    "dm": interaction.guild is None,
                    "allowlisted": self._role_verified(interaction.guild),
                    "button": True,
                },
            )
        )

    # -- outbound ---------------------------------------------------------------------

    async def send(self, out: Outbound) -> None:
        client = self._client
        if client is None or client.user is None:
            raise DeliveryError("discord client is not logged in yet")
        channel = client.get_partial_messageable(self._channel_id(out.chat_id))
        reference = None
        if out.reply_to and out.reply_to.isdigit():
            reference = discord.MessageReference(
                message_id=int(out.reply_to), channel_id=channel.id, fail_if_not_exists=False
            )
        try:
            match out:
                case TextOut():
                    await self._send_parts(channel, out, reference)
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
            raise _delivery_error(exc) from exc
        except _NETWORK_ERRORS as exc:
            raise DeliveryError(f"network error talking to discord: {type(exc).__name__}") from exc

    def _channel_id(self, chat_id: str) -> int:
        chat = self._config.channels.get(chat_id, chat_id)
        if not chat.isdigit():
            raise DeliveryError(f"not a discord channel id: {chat_id!r}", retryable=False)
        return int(chat)

    async def _send_parts(
        self,
        channel: discord.PartialMessageable,
        out: TextOut,
        reference: discord.MessageReference | None,
    ) -> None:
        parts = render.split_text(out.text)
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


def _delivery_error(exc: discord.HTTPException) -> DeliveryError:
    reason = f"discord {exc.status}: {exc.text or type(exc).__name__}"
    if isinstance(exc, discord.Forbidden | discord.NotFound):
        return DeliveryError(reason, retryable=False)  # no access, unknown channel, DMs off
    if exc.status == 429:
        after = exc.response.headers.get("Retry-After")
        return DeliveryError(reason, retry_after_s=float(after) if after else None)
    return DeliveryError(reason, retryable=exc.status >= 500)
