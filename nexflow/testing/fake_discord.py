"""A fake Discord: REST API and gateway WebSocket on loopback, for the real discord.py.

discord.py talks to it unchanged once ``discord.http.Route.BASE`` is :attr:`FakeDiscord.
api_base` and ``DiscordWebSocket.DEFAULT_GATEWAY`` is :attr:`FakeDiscord.gateway_url`
(the Discord connector sets both from its ``api_base`` / ``gateway_url`` options).

What it speaks, enough for a bot:

* REST under ``/api/v10``: ``/gateway``, ``/gateway/bot``, ``/users/@me``,
  ``/oauth2/applications/@me``, get a channel, create (JSON or multipart with files)
  and edit messages, trigger typing, open a DM channel, get a guild member, interaction
  callbacks; attachments are served from ``/attachments/...``. Every JSON answer has
  ``Content-Type: application/json`` exactly (discord.py compares it verbatim).
* Gateway: HELLO (op 10) → IDENTIFY (op 2) → READY, then GUILD_CREATE with channels,
  roles and members; heartbeats (op 1) are ACKed (op 11); RESUME (op 6) replays the
  dispatches the client missed and sends RESUMED, or INVALID_SESSION (op 9) for an
  unknown session. A wrong token closes the socket with 4004.

Tests inject traffic with :meth:`FakeDiscord.message`, :meth:`FakeDiscord.dm` and
:meth:`FakeDiscord.click`, script REST failures with :meth:`FakeDiscord.fail` (5xx, 429
with ``retry_after`` in body and headers, 403 Missing Access, 404 Unknown Channel), drop
the WebSocket with :meth:`FakeDiscord.drop`, and read what the bot did from ``sent``,
``edits``, ``callbacks`` and ``typing``.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import aiohttp
from aiohttp import web

from nexflow.testing.serve import serve

API = "/api/v10"
DISCORD_EPOCH_MS = 1420070400000
_ERRORS = {
    401: (0, "401: Unauthorized"),
    403: (50001, "Missing Access"),
    404: (10003, "Unknown Channel"),
    429: (0, "You are being rate limited."),
}

Payload = dict[str, Any]
_PERMISSIONS = "1071698660929"  # view, send, embed, attach, read history, ...
_JOINED = "2024-01-01T00:00:00+00:00"
_USER: Payload = dict(discriminator="0", global_name=None, avatar=None, public_flags=0)
_MEMBER: Payload = dict(nick=None, avatar=None, joined_at=_JOINED, deaf=False, mute=False, flags=0)
_ROLE: Payload = dict(
    color=0, hoist=False, permissions=_PERMISSIONS, managed=False, mentionable=True, flags=0
)
_CHANNEL: Payload = dict(
    position=0, permission_overwrites=[], nsfw=False, parent_id=None, topic=None,
    last_message_id=None, rate_limit_per_user=0,
)  # fmt: skip
_GUILD: Payload = dict(
    icon=None, unavailable=False, large=False, features=[], verification_level=0,
    default_message_notifications=0, explicit_content_filter=0, mfa_level=0, premium_tier=0,
    preferred_locale="en-US", system_channel_id=None, afk_channel_id=None, afk_timeout=300,
    nsfw_level=0, emojis=[], stickers=[], threads=[], voice_states=[], presences=[],
    stage_instances=[], guild_scheduled_events=[], joined_at=_JOINED,
)  # fmt: skip
_MESSAGE: Payload = dict(
    timestamp=_JOINED, edited_timestamp=None, tts=False, mention_everyone=False,
    mention_roles=[], embeds=[], pinned=False, flags=0, components=[],
)  # fmt: skip


@dataclass
class Failure:
    """Let ``after`` matching requests through, then answer the next ``times`` requests
    whose method is ``method`` and whose path contains ``path`` with ``status`` (429
    carries ``retry_after`` in the body and the headers)."""

    status: int
    method: str = "POST"
    path: str = "/messages"
    times: int = 1
    retry_after: float = 1.0
    after: int = 0


@dataclass(frozen=True)
class SentMessage:
    """A message the bot created (``POST /channels/{id}/messages``)."""

    id: str
    channel_id: str
    content: str
    embeds: list[Payload]
    components: list[Payload]
    files: list[tuple[str, bytes]]
    reference: Payload | None


@dataclass
class _Session:
    id: str
    seq: int = 0
    backlog: list[Payload] = field(default_factory=list)


def _json(data: Any, status: int = 200, headers: dict[str, str] | None = None) -> web.Response:
    return web.Response(
        body=json.dumps(data).encode(),
        status=status,
        headers={"Content-Type": "application/json", **(headers or {})},
    )


def _error(status: int, message: str | None = None, code: int | None = None) -> web.Response:
    default_code, default_message = _ERRORS.get(status, (0, f"{status}: Server Error"))
    return _json({"message": message or default_message, "code": code or default_code}, status)


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
        self.heartbeat_interval_ms = heartbeat_interval_ms
        self._ids = itertools.count(1)
        self._users: dict[str, Payload] = {}
        self._members: dict[str, Payload] = {}
        self.bot: Payload = self._user("nexflow", bot=True)
        self.guild_id = self.snowflake()
        self.roles: dict[str, str] = {"@everyone": self.guild_id}
        self.roles.update({name: self.snowflake() for name in roles})
        self.channels: dict[str, str] = {name: self.snowflake() for name in channels}
        self._channels: dict[str, Payload] = {
            cid: self._guild_channel(cid, name) for name, cid in self.channels.items()
        }
        self._dms: dict[str, str] = {}  # user id -> DM channel id
        self._messages: dict[str, Payload] = {}
        self.sent: list[SentMessage] = []
        self.edits: list[Payload] = []
        self.callbacks: list[Payload] = []
        self.typing: list[str] = []
        self.requests: list[tuple[str, str]] = []
        self.identifies = 0
        self.resumes = 0
        self._failures: list[Failure] = []
        self._attachments: dict[str, bytes] = {}
        self._session: _Session | None = None
        self._socket: web.WebSocketResponse | None = None
        self._sockets: set[web.WebSocketResponse] = set()
        self._changed = asyncio.Condition()
        self._runner: web.AppRunner | None = None
        self._add_member(self.bot, ())

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
        app = web.Application(middlewares=[self._middleware], client_max_size=64 * 1024 * 1024)
        app.router.add_get("/gateway", self._gateway)
        app.router.add_get("/attachments/{key}/{name}", self._attachment)
        api = [
            web.get(f"{API}/gateway", self._get_gateway),
            web.get(f"{API}/gateway/bot", self._get_gateway),
            web.get(f"{API}/users/@me", self._me),
            web.get(f"{API}/oauth2/applications/@me", self._application),
            web.post(f"{API}/users/@me/channels", self._open_dm),
            web.get(f"{API}/channels/{{cid}}", self._get_channel),
            web.post(f"{API}/channels/{{cid}}/messages", self._create_message),
            web.patch(f"{API}/channels/{{cid}}/messages/{{mid}}", self._edit_message),
            web.post(f"{API}/channels/{{cid}}/typing", self._typing),
            web.get(f"{API}/guilds/{{gid}}/members/{{uid}}", self._get_member),
            web.post(f"{API}/interactions/{{iid}}/{{token}}/callback", self._callback),
        ]
        app.router.add_routes(api)
        app.on_shutdown.append(self._close_sockets)
        self._runner, self.port = await serve(app, self.host, self.port)
        return self.api_base

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def _close_sockets(self, _: web.Application) -> None:
        for ws in list(self._sockets):
            await ws.close(code=1001)

    # -- the world --------------------------------------------------------------------

    def snowflake(self) -> str:
        ms = int(time.time() * 1000) - DISCORD_EPOCH_MS
        return str((ms << 22) | (next(self._ids) & 0x3FFFFF))

    def _user(self, username: str, *, bot: bool = False) -> Payload:
        uid = self.snowflake()
        self._users[uid] = user = {"id": uid, "username": username, "bot": bot, **_USER}
        return user

    def _guild_channel(self, cid: str, name: str) -> Payload:
        return {"id": cid, "type": 0, "guild_id": self.guild_id, "name": name, **_CHANNEL}

    def _add_member(self, user: Payload, roles: tuple[str, ...]) -> Payload:
        member = {"user": user, "roles": [self.roles[r] for r in roles], **_MEMBER}
        self._members[user["id"]] = member
        return member

    def add_user(self, username: str, roles: tuple[str, ...] = (), *, member: bool = True) -> str:
        """A person; a guild member with ``roles`` (names) unless ``member`` is False."""
        user = self._user(username)
        if member:
            self._add_member(user, roles)
        return str(user["id"])

    def _guild(self) -> Payload:
        roles = [
            {"id": rid, "name": name, "position": int(name != "@everyone"), **_ROLE}
            for name, rid in self.roles.items()
        ]
        channels = [c for c in self._channels.values() if c.get("guild_id") == self.guild_id]
        return {
            "id": self.guild_id,
            "name": "Nexflow test guild",
            "owner_id": self.bot["id"],
            "member_count": len(self._members),
            "roles": roles,
            "channels": channels,
            "members": list(self._members.values()),
            **_GUILD,
        }

    def _dm_channel(self, user_id: str) -> Payload:
        if user_id not in self._dms:
            cid = self._dms[user_id] = self.snowflake()
            recipients = [self._users[user_id]]
            self._channels[cid] = {"id": cid, "type": 1, "recipients": recipients}
        return self._channels[self._dms[user_id]]

    def dm_channel_id(self, user_id: str) -> str:
        return str(self._dm_channel(user_id)["id"])

    def add_attachment(self, name: str, data: bytes) -> Payload:
        """Host a file; pass the result to :meth:`message` / :meth:`dm` ``attachments``."""
        key = uuid.uuid4().hex
        self._attachments[key] = data
        url = f"{self.base_url}/attachments/{key}/{name}"
        kind = "text/plain" if name.endswith(".txt") else "application/octet-stream"
        return dict(
            id=self.snowflake(), filename=name, size=len(data), url=url, proxy_url=url,
            content_type=kind,
        )  # fmt: skip

    # -- injecting traffic ------------------------------------------------------------

    def _message_payload(
        self,
        channel_id: str,
        author_id: str,
        content: str,
        *,
        mentions: list[Payload],
        attachments: list[Payload],
        reference: str | None = None,
    ) -> Payload:
        mid = self.snowflake()
        channel = self._channels[channel_id]
        data: Payload = {
            "id": mid,
            "channel_id": channel_id,
            "author": self._users[author_id],
            "content": content,
            "mentions": mentions,
            "attachments": attachments,
            "type": 19 if reference else 0,
            **_MESSAGE,
        }
        if reference is not None:
            data["message_reference"] = {"message_id": reference, "channel_id": channel_id}
            if reference in self._messages:
                data["referenced_message"] = self._messages[reference]
        if channel.get("guild_id"):
            data["guild_id"] = channel["guild_id"]
            if author_id in self._members:
                data["member"] = {k: v for k, v in self._members[author_id].items() if k != "user"}
        self._messages[mid] = data
        return data

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
        cid = self.channels.get(channel, channel)
        text = f"<@{self.bot['id']}> {content}" if mention_bot else content
        mentions = [{**self.bot, "member": self._members[self.bot["id"]]}] if mention_bot else []
        data = self._message_payload(
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
        data = self._message_payload(
            cid, author_id, content, mentions=[], attachments=list(attachments)
        )
        await self.dispatch("MESSAGE_CREATE", data)
        return str(data["id"])

    async def click(self, message_id: str, custom_id: str, user_id: str) -> str:
        """A person presses a button on one of the bot's messages. Returns the
        interaction id (its callback ends up in ``callbacks``)."""
        message = self._messages[message_id]
        channel = self._channels[message["channel_id"]]
        iid = self.snowflake()
        data: Payload = dict(
            id=iid, application_id=self.bot["id"], type=3, token=f"itoken-{iid}", version=1,
            data={"custom_id": custom_id, "component_type": 2}, channel_id=channel["id"],
            channel=channel, message=message, app_permissions=_PERMISSIONS, locale="en-US",
            entitlements=[], authorizing_integration_owners={"0": self.guild_id},
            attachment_size_limit=10 * 1024 * 1024,
        )  # fmt: skip
        if channel.get("guild_id"):
            data["guild_id"] = channel["guild_id"]
            data["guild_locale"] = "en-US"
            data["context"] = 0
            data["member"] = {**self._members[user_id], "permissions": _PERMISSIONS}
        else:
            data["context"] = 1
            data["user"] = self._users[user_id]
        await self.dispatch("INTERACTION_CREATE", data)
        return iid

    async def dispatch(self, event: str, data: Payload) -> None:
        """Send a dispatch (op 0) now, or keep it for the client's RESUME."""
        session = self._session
        if session is None:
            return
        session.seq += 1
        payload = {"op": 0, "t": event, "s": session.seq, "d": data}
        session.backlog.append(payload)
        del session.backlog[:-1000]
        ws = self._socket
        if ws is not None and not ws.closed:
            with contextlib.suppress(ConnectionError, RuntimeError):
                await ws.send_json(payload)

    # -- scripting faults -------------------------------------------------------------

    def fail(self, failure: Failure) -> None:
        self._failures.append(failure)

    async def drop(self, code: int = 4000) -> None:
        """Close the gateway socket as a network blip would; the session stays
        resumable and dispatches made meanwhile are replayed on RESUME."""
        ws, self._socket = self._socket, None
        if ws is not None:
            await ws.close(code=code)

    def invalidate_session(self) -> None:
        """The next RESUME is refused with INVALID_SESSION (the client re-IDENTIFYs)."""
        self._session = None

    # -- waiting ----------------------------------------------------------------------

    async def _notify(self) -> None:
        async with self._changed:
            self._changed.notify_all()

    async def wait_for(self, predicate: Callable[[], bool], within_s: float = 5.0) -> None:
        async with asyncio.timeout(within_s), self._changed:
            await self._changed.wait_for(predicate)

    async def wait_sent(self, count: int, within_s: float = 5.0) -> list[SentMessage]:
        await self.wait_for(lambda: len(self.sent) >= count, within_s)
        return self.sent

    # -- REST -------------------------------------------------------------------------

    @web.middleware
    async def _middleware(
        self, request: web.Request, handler: Callable[[web.Request], Any]
    ) -> web.StreamResponse:
        path = request.path
        if path.startswith(API):
            self.requests.append((request.method, path[len(API) :]))
            public = path.endswith(("/gateway", "/gateway/bot")) or "/interactions/" in path
            if not public and request.headers.get("Authorization") != f"Bot {self.token}":
                return _error(401)
            for failure in self._failures:
                if failure.method == request.method and failure.path in path:
                    if failure.after > 0:
                        failure.after -= 1
                        continue
                    failure.times -= 1
                    if failure.times <= 0:
                        self._failures.remove(failure)
                    return self._failure(failure)
        response: web.StreamResponse = await handler(request)
        return response

    def _failure(self, failure: Failure) -> web.Response:
        if failure.status != 429:
            return _error(failure.status)
        retry = failure.retry_after
        body = {"message": _ERRORS[429][1], "retry_after": retry, "global": False, "code": 0}
        headers = {
            "Retry-After": str(max(1, round(retry))),
            "X-RateLimit-Limit": "5",
            "X-RateLimit-Remaining": "0",
            "X-RateLimit-Reset": f"{time.time() + retry:.3f}",
            "X-RateLimit-Reset-After": f"{retry:.3f}",
            "X-RateLimit-Bucket": "fake-bucket",
            "X-RateLimit-Scope": "user",
            "Via": "1.1 google",
        }
        return _json(body, 429, headers)

    async def _get_gateway(self, _: web.Request) -> web.Response:
        limit = {"total": 1000, "remaining": 1000, "reset_after": 0, "max_concurrency": 1}
        return _json({"url": self.gateway_url, "shards": 1, "session_start_limit": limit})

    async def _me(self, _: web.Request) -> web.Response:
        return _json(self.bot)

    async def _application(self, _: web.Request) -> web.Response:
        owner = self._user("owner")
        app = dict(
            id=self.bot["id"], name="nexflow", description="", icon=None, bot_public=False,
            bot_require_code_grant=False, owner=owner, team=None, verify_key="0" * 64,
            flags=0, summary="", rpc_origins=[],
        )  # fmt: skip
        return _json(app)

    async def _open_dm(self, request: web.Request) -> web.Response:
        body = await request.json()
        return _json(self._dm_channel(str(body["recipient_id"])))

    async def _get_channel(self, request: web.Request) -> web.Response:
        channel = self._channels.get(request.match_info["cid"])
        return _json(channel) if channel is not None else _error(404)

    async def _get_member(self, request: web.Request) -> web.Response:
        member = self._members.get(request.match_info["uid"])
        if request.match_info["gid"] != self.guild_id or member is None:
            return _error(404, "Unknown Member", 10007)
        return _json(member)

    async def _typing(self, request: web.Request) -> web.Response:
        cid = request.match_info["cid"]
        if cid not in self._channels:
            return _error(404)
        self.typing.append(cid)
        await self._notify()
        return web.Response(status=204)

    async def _read_body(self, request: web.Request) -> tuple[Payload, list[tuple[str, bytes]]]:
        if not request.content_type.startswith("multipart/"):
            body: Payload = await request.json()
            return body, []
        body, files = {}, []
        reader = await request.multipart()
        while (part := await reader.next()) is not None:
            if not isinstance(part, aiohttp.BodyPartReader):
                continue
            if part.name == "payload_json":
                body = json.loads(await part.text())
            else:
                files.append((part.filename or "file", bytes(await part.read())))
        return body, files

    async def _create_message(self, request: web.Request) -> web.Response:
        cid = request.match_info["cid"]
        if cid not in self._channels:
            return _error(404)
        body, files = await self._read_body(request)
        attachments = [self.add_attachment(name, blob) for name, blob in files]
        content = body.get("content") or ""
        data = self._message_payload(
            cid, self.bot["id"], content, mentions=[], attachments=attachments
        )
        data.update(embeds=body.get("embeds") or [], components=body.get("components") or [])
        mid = data["id"]
        self.sent.append(
            SentMessage(
                id=mid,
                channel_id=cid,
                content=content,
                embeds=data["embeds"],
                components=data["components"],
                files=files,
                reference=body.get("message_reference"),
            )
        )
        await self.dispatch("MESSAGE_CREATE", data)  # Discord echoes the bot's own messages
        await self._notify()
        return _json(data)

    async def _edit_message(self, request: web.Request) -> web.Response:
        message = self._messages.get(request.match_info["mid"])
        if message is None:
            return _error(404, "Unknown Message", 10008)
        body, _ = await self._read_body(request)
        message.update({k: v for k, v in body.items() if k in ("content", "embeds", "components")})
        self.edits.append({"id": message["id"], **body})
        await self._notify()
        return _json(message)

    async def _callback(self, request: web.Request) -> web.Response:
        body, _ = await self._read_body(request)
        record = {"interaction_id": request.match_info["iid"], **body}
        self.callbacks.append(record)
        await self._notify()
        interaction = {
            "id": request.match_info["iid"],
            "type": 3,
            "response_message_loading": False,
            "response_message_ephemeral": False,
        }
        return _json({"interaction": interaction, "resource": {"type": body.get("type", 6)}})

    async def _attachment(self, request: web.Request) -> web.Response:
        blob = self._attachments.get(request.match_info["key"])
        if blob is None:
            return web.Response(status=404)
        return web.Response(body=blob, content_type="application/octet-stream")

    # -- gateway ----------------------------------------------------------------------

    async def _gateway(self, request: web.Request) -> web.WebSocketResponse:
        ws = web.WebSocketResponse(autoping=True)
        await ws.prepare(request)
        self._sockets.add(ws)
        try:
            await ws.send_json({"op": 10, "d": {"heartbeat_interval": self.heartbeat_interval_ms}})
            async for msg in ws:
                if msg.type is not web.WSMsgType.TEXT:
                    continue
                frame = json.loads(msg.data)
                op = frame.get("op")
                if op == 1:
                    await ws.send_json({"op": 11})
                elif op == 2:
                    await self._identify(ws, frame["d"])
                elif op == 6:
                    await self._resume(ws, frame["d"])
        finally:
            self._sockets.discard(ws)
            if self._socket is ws:
                self._socket = None
        return ws

    async def _identify(self, ws: web.WebSocketResponse, data: Payload) -> None:
        if data.get("token") != self.token:
            await ws.close(code=4004, message=b"Authentication failed.")
            return
        self.identifies += 1
        self._session = _Session(uuid.uuid4().hex)
        self._socket = ws
        ready = dict(
            v=10, user=self.bot, guilds=[{"id": self.guild_id, "unavailable": True}],
            session_id=self._session.id, resume_gateway_url=self.gateway_url, shard=[0, 1],
            application={"id": self.bot["id"], "flags": 0}, private_channels=[],
            relationships=[], user_settings={}, presences=[], guild_join_requests=[],
        )  # fmt: skip
        await self.dispatch("READY", ready)
        await self.dispatch("GUILD_CREATE", self._guild())
        await self._notify()

    async def _resume(self, ws: web.WebSocketResponse, data: Payload) -> None:
        session = self._session
        if (
            data.get("token") != self.token
            or session is None
            or session.id != data.get("session_id")
        ):
            await ws.send_json({"op": 9, "d": False})
            return
        self.resumes += 1
        self._socket = ws
        seen = int(data.get("seq") or 0)
        for payload in session.backlog:
            if payload["s"] > seen:
                await ws.send_json(payload)
        await self.dispatch("RESUMED", {})
        await self._notify()
