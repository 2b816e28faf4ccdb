"""A fake Discord: REST API and gateway WebSocket on loopback, for the real discord.py.

discord.py talks to it unchanged once ``discord.http.Route.BASE`` is :attr:`FakeDiscord.
api_base` and ``DiscordWebSocket.DEFAULT_GATEWAY`` is :attr:`FakeDiscord.gateway_url`
(the Discord connector sets both from its ``api_base`` / ``gateway_url`` options).

This module is the server and its test-facing surface; the protocol lives beside it:
:mod:`~nexflow.testing.fake_discord_rest` (REST routes: messages with create, edit and
delete, typing, DMs, members, interaction callbacks, attachments),
:mod:`~nexflow.testing.fake_discord_gateway` (HELLO, IDENTIFY → READY + GUILD_CREATE,
heartbeats, RESUME with replay, INVALID_SESSION, 4004 on a wrong token),
:mod:`~nexflow.testing.fake_discord_world` (guild, channels, roles, members, messages) and
:mod:`~nexflow.testing.fake_discord_model` (templates, records, errors).

Tests inject traffic with :meth:`FakeDiscord.message`, :meth:`FakeDiscord.dm` and
:meth:`FakeDiscord.click`, script REST failures with :meth:`FakeDiscord.fail` (5xx, 429
with ``retry_after`` in body and headers, 403 Missing Access, 404 Unknown Channel), drop
the WebSocket with :meth:`FakeDiscord.drop`, and read what the bot did from ``sent``
(current content; ``SentMessage.edits`` lists each edit), ``edits``, ``deleted``,
``callbacks`` and ``typing``.
"""

from __future__ import annotations

from collections.abc import Callable

from aiohttp import web

from nexflow.testing.fake_discord_gateway import Gateway
from nexflow.testing.fake_discord_model import (
    API,
    DISCORD_EPOCH_MS,
    Changes,
    Failure,
    Payload,
    SentMessage,
)
from nexflow.testing.fake_discord_rest import RestAPI
from nexflow.testing.fake_discord_world import World
from nexflow.testing.serve import serve

__all__ = ["API", "DISCORD_EPOCH_MS", "Failure", "FakeDiscord", "Payload", "SentMessage"]


class FakeDiscord:
    """One bot, one guild. Start with :meth:`start`, stop with :meth:`stop`."""

    def __init__(
        self,
        *,
        token: str = "fake-discord-token",
        channels: tuple[str, ...] = ("general", "dev"),
        roles: tuple[str, ...] = ("admin", "dev"),
        heartbeat_interval_ms: int = 41250,
        host: str = "127.0.0.1",
    ) -> None:
        self.token = token
        self.host = host
        self.port = 0
        self._world = World(channels, roles)
        self._changes = Changes()
        self._gateway = Gateway(
            self._world,
            self._changes,
            token=token,
            url=lambda: self.gateway_url,
            heartbeat_interval_ms=heartbeat_interval_ms,
        )
        self._rest = RestAPI(
            self._world,
            self._gateway,
            self._changes,
            token=token,
            gateway_url=lambda: self.gateway_url,
        )
        self._runner: web.AppRunner | None = None

    # -- the world and what the bot did -----------------------------------------------

    @property
    def bot(self) -> Payload:
        return self._world.bot

    @property
    def guild_id(self) -> str:
        return self._world.guild_id

    @property
    def roles(self) -> dict[str, str]:
        """Role name -> id (``@everyone`` is the guild id)."""
        return self._world.roles

    @property
    def channels(self) -> dict[str, str]:
        """Guild channel name -> id."""
        return self._world.channel_ids

    @property
    def heartbeat_interval_ms(self) -> int:
        return self._gateway.heartbeat_interval_ms

    @property
    def sent(self) -> list[SentMessage]:
        return self._rest.sent

    @property
    def edits(self) -> list[Payload]:
        return self._rest.edits

    @property
    def deleted(self) -> list[str]:
        return self._rest.deleted

    @property
    def callbacks(self) -> list[Payload]:
        return self._rest.callbacks

    @property
    def typing(self) -> list[str]:
        return self._rest.typing

    @property
    def requests(self) -> list[tuple[str, str]]:
        return self._rest.requests

    @property
    def identifies(self) -> int:
        return self._gateway.identifies

    @property
    def resumes(self) -> int:
        return self._gateway.resumes

    # -- lifecycle --------------------------------------------------------------------

    @property
    def base_url(self) -> str:
        return f"http://{self.host}:{self.port}"

    @property
    def api_base(self) -> str:
        return self.base_url + API

    @property
    def gateway_url(self) -> str:
        return f"ws://{self.host}:{self.port}/gateway"

    async def start(self) -> str:
        app = web.Application(middlewares=[self._rest.middleware], client_max_size=64 * 1024**2)
        app.router.add_get("/gateway", self._gateway.handle)
        app.router.add_routes(self._rest.routes())
        app.on_shutdown.append(self._gateway.close_sockets)
        self._runner, self.port = await serve(app, self.host, self.port)
        self._world.base_url = self.base_url
        return self.api_base

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    # -- the world --------------------------------------------------------------------

    def snowflake(self) -> str:
        return self._world.snowflake()

    def add_user(self, username: str, roles: tuple[str, ...] = (), *, member: bool = True) -> str:
        """A person; a guild member with ``roles`` (names) unless ``member`` is False."""
        return self._world.add_user(username, roles, member=member)

    def dm_channel_id(self, user_id: str) -> str:
        return str(self._world.dm_channel(user_id)["id"])

    def add_attachment(self, name: str, data: bytes) -> Payload:
        """Host a file; pass the result to :meth:`message` / :meth:`dm` ``attachments``."""
        return self._world.add_attachment(name, data)

    # -- injecting traffic ------------------------------------------------------------

    async def message(
        self,
        channel: str,
        author_id: str,
        content: str,
        *,
        mention_bot: bool = False,
        attachments: tuple[Payload, ...] = (),
        reply_to: str | None = None,
    ) -> str:
        """A person writes in a guild channel (by name or id); ``mention_bot`` prefixes
        ``<@bot>`` and lists the bot in ``mentions`` as Discord does. Returns its id."""
        world = self._world
        cid = self.channels.get(channel, channel)
        text = f"<@{world.bot['id']}> {content}" if mention_bot else content
        mentions = [{**world.bot, "member": world.members[world.bot["id"]]}] if mention_bot else []
        data = world.message(
            cid,
            author_id,
            text,
            mentions=mentions,
            attachments=list(attachments),
            reference=reply_to,
        )
        await self.dispatch("MESSAGE_CREATE", data)
        return str(data["id"])

    async def dm(
        self, author_id: str, content: str, *, attachments: tuple[Payload, ...] = ()
    ) -> str:
        """A person writes to the bot directly. Returns the message id."""
        cid = self.dm_channel_id(author_id)
        data = self._world.message(
            cid, author_id, content, mentions=[], attachments=list(attachments)
        )
        await self.dispatch("MESSAGE_CREATE", data)
        return str(data["id"])

    async def click(self, message_id: str, custom_id: str, user_id: str) -> str:
        """A person presses a button on one of the bot's messages. Returns the
        interaction id (its callback ends up in ``callbacks``)."""
        data = self._world.interaction(message_id, custom_id, user_id)
        await self.dispatch("INTERACTION_CREATE", data)
        return str(data["id"])

    async def dispatch(self, event: str, data: Payload) -> None:
        """Send a dispatch (op 0) now, or keep it for the client's RESUME."""
        await self._gateway.dispatch(event, data)

    # -- scripting faults -------------------------------------------------------------

    def fail(self, failure: Failure) -> None:
        self._rest.failures.append(failure)

    async def drop(self, code: int = 4000) -> None:
        """Close the gateway socket as a network blip would; the session stays
        resumable and dispatches made meanwhile are replayed on RESUME."""
        await self._gateway.drop(code)

    def invalidate_session(self) -> None:
        """The next RESUME is refused with INVALID_SESSION (the client re-IDENTIFYs)."""
        self._gateway.session = None

    # -- waiting ----------------------------------------------------------------------

    async def wait_for(self, predicate: Callable[[], bool], within_s: float = 5.0) -> None:
        """Wait until ``predicate()`` holds; checked after everything the bot does."""
        await self._changes.wait_for(predicate, within_s)

    async def wait_sent(self, count: int, within_s: float = 5.0) -> list[SentMessage]:
        await self.wait_for(lambda: len(self.sent) >= count, within_s)
        return self.sent
