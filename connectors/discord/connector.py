"""The Discord connector: a discord.py client in a task this connector owns.

Inbound (:mod:`connectors.discord.inbound`): server messages and DMs the bot is meant to
answer become :class:`InboundEvent`; attachments are saved; button clicks become chat
commands. Outbound (:mod:`connectors.discord.outbound`): text in 2000-character parts,
embeds with buttons, files; failures are raised as :class:`DeliveryError`. Streaming
(:mod:`connectors.discord.drafts`): :meth:`DiscordConnector.draft` shows a reply while
the model writes it, edited in place and rate limited; the final text replaces it.

Connection: discord.py reconnects and RESUMEs the gateway by itself; the owned task
restarts the client with backoff when it gives up (for example when Discord is
unreachable at start), and stops for good on a rejected token.

Replicas (:class:`~nexflow.gateway.connector.Elected`): after :meth:`elect`, every
replica logs the client in over REST (so each can send), and only the one leading
``discord:<application id>:<shard>`` opens the gateway connection; when it dies another
takes over and IDENTIFYs afresh. A replica that loses leadership closes its gateway
socket and keeps its REST session.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
from collections.abc import AsyncIterator
from pathlib import Path

import structlog
import yarl

from connectors.discord.config import DiscordConfig
from connectors.discord.drafts import Drafts
from connectors.discord.inbound import CHANNEL, Client, Inbound, new_client
from connectors.discord.manifest import MANIFEST
from connectors.discord.outbound import Sender
from connectors.discord.sdk import discord, gateway, http
from nexflow.backoff import Backoff, pause
from nexflow.bus.events import InboundEvent, Outbound
from nexflow.gateway.connector import ConnectorManifest, DeliveryError
from nexflow.scale.leader import Leadership, Term, lead

__all__ = ["CHANNEL", "DiscordConnector"]

log = structlog.get_logger("nexflow.connectors.discord")

RESTART_BACKOFF = Backoff(base_s=1.0, cap_s=60.0)  # a client that gave up: 1 s, 2 s … 60 s


class DiscordConnector:
    def __init__(self, config: DiscordConfig, download_dir: Path, *, queue_size: int = 256) -> None:
        self._config = config
        self._inbound = Inbound(config, download_dir, queue_size)
        self._drafts = Drafts(config)
        self._sender = Sender(self._drafts)
        self._client: Client | None = None
        self._task: asyncio.Task[None] | None = None
        self._ready = asyncio.Event()
        self._stopped = asyncio.Event()
        self._saved_endpoints: tuple[str, yarl.URL] | None = None
        self._leadership: Leadership | None = None

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
        self._inbound.reset()
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
        self._inbound.close()

    def elect(self, leadership: Leadership) -> None:
        """Hold the gateway connection only while leading this bot's shard among the
        replicas (see the module docstring); call before :meth:`start`."""
        self._leadership = leadership

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

    async def _run(self) -> None:
        """Supervise the client: discord.py reconnects the gateway itself; when it gives up
        (or cannot log in because Discord is unreachable) a new client is started after a
        backoff (:data:`RESTART_BACKOFF`). A rejected token or a missing intent stops it
        for good."""
        failures = 0  # in a row
        token = self._config.bot_token.get_secret_value()
        while not self._stopped.is_set():
            client = self._client = new_client(self._config, self._inbound, self._ready)
            error: Exception | None = None
            try:
                if self._leadership is None:
                    await client.start(token)  # returns when closed
                else:
                    await client.login(token)  # REST: this replica can send from here on
                    shard = f"discord:{client.application_id}:{client.shard_id or 0}"
                    gateway_work = functools.partial(self._connect_while_leading, client)
                    await lead(self._leadership, shard, gateway_work, self._stopped)
            except discord.LoginFailure:
                log.error("discord_login_failed", hint="check connectors.discord.bot_token")
                return
            except discord.PrivilegedIntentsRequired:
                log.error(
                    "discord_intents_required",
                    hint="enable the Message Content intent for the bot in the developer portal",
                )
                return
            except Exception as exc:
                if self._stopped.is_set():
                    return  # closed under a request in flight
                error = exc
            finally:
                await client.close()
            if self._ready.is_set():  # it had been connected: start the backoff afresh
                self._ready.clear()
                failures = 0
            failures += 1
            wait = RESTART_BACKOFF.delay(failures)
            if error is not None:
                log.warning("discord_client_failed", retry_in_s=wait, exc_info=error)
            await pause(wait, self._stopped)

    async def _connect_while_leading(self, client: Client, term: Term) -> None:
        log.info("discord_gateway_elected", name=term.name)
        try:
            await client.connect(reconnect=True)  # returns when the client is closed
        except asyncio.CancelledError:  # leadership lost (or stopping): leave the gateway
            self._ready.clear()
            if client.ws is not None:
                with contextlib.suppress(Exception):  # the socket may be broken already
                    await client.ws.close(code=1000)
            raise

    # -- the channel interface --------------------------------------------------------

    def events(self) -> AsyncIterator[InboundEvent]:
        return self._inbound.events()

    async def send(self, out: Outbound) -> None:
        await self._sender.send(self._channel(out.chat_id), out)

    async def draft(self, chat_id: str, text: str) -> None:
        """Show a partial reply (the whole text so far), edited in place at most every
        ``stream_edit_interval_s``; the next :meth:`send` to the chat replaces it."""
        try:
            channel = self._channel(chat_id)
        except DeliveryError:
            return  # not connected (yet): the final reply is sent through the outbox
        await self._drafts.draft(channel, str(channel.id), text)

    def _channel(self, chat_id: str) -> discord.PartialMessageable:
        client = self._client
        if client is None or client.user is None:
            raise DeliveryError("discord client is not logged in yet")
        chat = self._config.channels.get(chat_id, chat_id)
        if not chat.isdigit():
            raise DeliveryError(f"not a discord channel id: {chat_id!r}", retryable=False)
        return client.get_partial_messageable(int(chat))
