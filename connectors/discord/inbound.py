"""What comes in from Discord: the discord.py client and the events it becomes.

Server messages (in ``guild_id``, in the mapped ``channels``, from members with one of
``allowed_roles``, mentioning the bot when ``mention_only``) and DMs become
:class:`InboundEvent`; attachments are saved under ``download_dir``; button clicks
become chat commands such as ``/confirm <id>`` or ``/press <action>`` (see
:func:`connectors.discord.render.parse_custom_id`). Events wait in a bounded queue that
:meth:`Inbound.events` drains.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import structlog

from connectors.discord import render
from connectors.discord.config import DiscordConfig
from connectors.discord.sdk import discord
from nexflow.bus.events import Attachment, InboundEvent

log = structlog.get_logger("nexflow.connectors.discord")

CHANNEL = "discord"
NETWORK_ERRORS = (OSError, aiohttp.ClientError, asyncio.TimeoutError)
_UNSAFE_NAME = re.compile(r"[^A-Za-z0-9._-]+")


class Client(discord.Client):
    """discord.py calls ``on_<event>`` methods; these forward to :class:`Inbound` and set
    ``ready`` on READY."""

    def __init__(self, inbound: Inbound, ready: asyncio.Event, **options: Any) -> None:
        super().__init__(**options)
        # Prefixed: discord.Client has private attributes of its own (``_ready`` among them).
        self._nexflow_inbound = inbound
        self._nexflow_ready = ready

    async def close(self) -> None:
        # discord.py leaves the task that delays READY (waiting for GUILD_CREATEs) running
        # after close; when it ends it dispatches on the closed client, whose loop is gone,
        # leaving a coroutine never awaited. Cancelled here: nobody waits for READY now.
        ready_task: asyncio.Task[None] | None = getattr(self._connection, "_ready_task", None)
        if ready_task is not None:
            ready_task.cancel()
        await super().close()

    async def on_ready(self) -> None:
        self._nexflow_ready.set()
        log.info("discord_ready", user=str(self.user), guilds=len(self.guilds))

    async def on_resumed(self) -> None:
        log.info("discord_resumed")

    async def on_message(self, message: discord.Message) -> None:
        await self._nexflow_inbound.on_message(self, message)

    async def on_interaction(self, interaction: discord.Interaction) -> None:
        await self._nexflow_inbound.on_interaction(self, interaction)


def new_client(config: DiscordConfig, inbound: Inbound, ready: asyncio.Event) -> Client:
    intents = discord.Intents.none()
    intents.guilds = intents.guild_messages = intents.dm_messages = True
    intents.message_content = True  # privileged: enable it in the developer portal
    return Client(
        inbound,
        ready,
        intents=intents,
        chunk_guilds_at_startup=False,
        max_ratelimit_timeout=config.max_ratelimit_wait_s,
        guild_ready_timeout=config.guild_ready_timeout_s,
        allowed_mentions=discord.AllowedMentions.none(),
    )


class Inbound:
    """Filters, translates and queues what the client receives."""

    def __init__(self, config: DiscordConfig, download_dir: Path, queue_size: int) -> None:
        self._config = config
        self._download_dir = download_dir
        self._queue: asyncio.Queue[InboundEvent | None] = asyncio.Queue(queue_size)
        self._channel_names = {cid: name for name, cid in config.channels.items()}
        self._roles = frozenset(config.allowed_roles)

    def reset(self) -> None:
        """A fresh queue (on start)."""
        self._queue = asyncio.Queue(self._queue.maxsize)
        self._download_dir.mkdir(parents=True, exist_ok=True)

    def close(self) -> None:
        """End :meth:`events`; unpublished events are lost with the process anyway."""
        while True:
            try:
                self._queue.put_nowait(None)
                break
            except asyncio.QueueFull:
                self._queue.get_nowait()

    async def events(self) -> AsyncIterator[InboundEvent]:
        while (event := await self._queue.get()) is not None:
            yield event

    # -- who and where ----------------------------------------------------------------

    def _listened(self, channel: Any) -> bool:
        if not self._channel_names:
            return True
        ids = {getattr(channel, "id", None), getattr(channel, "parent_id", None)}
        return any(str(i) in self._channel_names for i in ids if i is not None)

    async def _permitted(self, client: Client, user: discord.abc.User) -> bool:
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
                except (*NETWORK_ERRORS, discord.HTTPException):
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

    def _addressed(self, client: Client, message: discord.Message) -> str | None:
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

    # -- messages and clicks ----------------------------------------------------------

    async def on_message(self, client: Client, message: discord.Message) -> None:
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
        except (*NETWORK_ERRORS, discord.HTTPException):
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
            except (*NETWORK_ERRORS, discord.HTTPException):
                log.warning("discord_attachment_failed", file=item.filename, exc_info=True)
                skipped.append(f"{item.filename} (download failed)")
                continue
            mime = item.content_type or "application/octet-stream"
            saved.append(Attachment(item.filename, str(path), mime, item.size))
        return tuple(saved), skipped

    async def on_interaction(self, client: Client, interaction: discord.Interaction) -> None:
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
        except (*NETWORK_ERRORS, discord.HTTPException):
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
