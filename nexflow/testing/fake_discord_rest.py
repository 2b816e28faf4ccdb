"""The fake Discord REST API under ``/api/v10``: ``/gateway``, ``/gateway/bot``,
``/users/@me``, ``/oauth2/applications/@me``, get a channel, create (JSON or multipart
with files), edit and delete messages, trigger typing, open a DM channel, get a guild
member, interaction callbacks; attachments are served from ``/attachments/...``.

Like Discord, it refuses message content over 2000 characters and empty messages (400),
lets the bot edit only its own messages (403), answers 404 for an unknown message or
channel, and tells the gateway about every create, edit and delete. Scripted
:class:`Failure` values answer matching requests first (see :meth:`RestAPI.middleware`).
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import Any

import aiohttp
from aiohttp import web

from nexflow.testing.fake_discord_gateway import Gateway
from nexflow.testing.fake_discord_model import (
    API,
    MESSAGE_LIMIT,
    Changes,
    Failure,
    Payload,
    SentMessage,
    error_response,
    failure_response,
    invalid_form,
    json_response,
)
from nexflow.testing.fake_discord_world import World

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


class RestAPI:
    """Records what the bot did: ``sent`` messages (kept current through edits),
    ``edits`` (each PATCH body), ``deleted`` message ids, interaction ``callbacks``,
    ``typing`` channel ids and every API ``requests`` (method, path)."""

    def __init__(
        self,
        world: World,
        gateway: Gateway,
        changes: Changes,
        *,
        token: str,
        gateway_url: Callable[[], str],
    ) -> None:
        self._world = world
        self._gateway = gateway
        self._changes = changes
        self._token = token
        self._gateway_url = gateway_url
        self.sent: list[SentMessage] = []
        self._sent_by_id: dict[str, SentMessage] = {}
        self.edits: list[Payload] = []
        self.deleted: list[str] = []
        self.callbacks: list[Payload] = []
        self.typing: list[str] = []
        self.requests: list[tuple[str, str]] = []
        self.failures: list[Failure] = []

    def routes(self) -> list[web.RouteDef]:
        return [
            web.get("/attachments/{key}/{name}", self._attachment),
            web.get(f"{API}/gateway", self._get_gateway),
            web.get(f"{API}/gateway/bot", self._get_gateway),
            web.get(f"{API}/users/@me", self._me),
            web.get(f"{API}/oauth2/applications/@me", self._application),
            web.post(f"{API}/users/@me/channels", self._open_dm),
            web.get(f"{API}/channels/{{cid}}", self._get_channel),
            web.post(f"{API}/channels/{{cid}}/messages", self._create_message),
            web.patch(f"{API}/channels/{{cid}}/messages/{{mid}}", self._edit_message),
            web.delete(f"{API}/channels/{{cid}}/messages/{{mid}}", self._delete_message),
            web.post(f"{API}/channels/{{cid}}/typing", self._typing),
            web.get(f"{API}/guilds/{{gid}}/members/{{uid}}", self._get_member),
            web.post(f"{API}/interactions/{{iid}}/{{token}}/callback", self._callback),
        ]

    @web.middleware
    async def middleware(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        """Log API requests, check the bot token, answer a scripted failure."""
        path = request.path
        if path.startswith(API):
            self.requests.append((request.method, path[len(API) :]))
            public = path.endswith(("/gateway", "/gateway/bot")) or "/interactions/" in path
            if not public and request.headers.get("Authorization") != f"Bot {self._token}":
                return error_response(401)
            for failure in self.failures:
                if failure.method == request.method and failure.path in path:
                    if failure.after > 0:
                        failure.after -= 1
                        continue
                    failure.times -= 1
                    if failure.times <= 0:
                        self.failures.remove(failure)
                    return failure_response(failure)
        return await handler(request)

    # -- identity and places ----------------------------------------------------------

    async def _get_gateway(self, _: web.Request) -> web.Response:
        limit = {"total": 1000, "remaining": 1000, "reset_after": 0, "max_concurrency": 1}
        return json_response(
            {"url": self._gateway_url(), "shards": 1, "session_start_limit": limit}
        )

    async def _me(self, _: web.Request) -> web.Response:
        return json_response(self._world.bot)

    async def _application(self, _: web.Request) -> web.Response:
        world = self._world
        app = dict(
            id=world.bot["id"], name="nexflow", description="", icon=None, bot_public=False,
            bot_require_code_grant=False, owner=world.new_user("owner"), team=None,
            verify_key="0" * 64, flags=0, summary="", rpc_origins=[],
        )  # fmt: skip
        return json_response(app)

    async def _open_dm(self, request: web.Request) -> web.Response:
        body = await request.json()
        return json_response(self._world.dm_channel(str(body["recipient_id"])))

    async def _get_channel(self, request: web.Request) -> web.Response:
        channel = self._world.channels.get(request.match_info["cid"])
        return json_response(channel) if channel is not None else error_response(404)

    async def _get_member(self, request: web.Request) -> web.Response:
        member = self._world.members.get(request.match_info["uid"])
        if request.match_info["gid"] != self._world.guild_id or member is None:
            return error_response(404, "Unknown Member", 10007)
        return json_response(member)

    async def _typing(self, request: web.Request) -> web.Response:
        cid = request.match_info["cid"]
        if cid not in self._world.channels:
            return error_response(404)
        self.typing.append(cid)
        await self._changes.notify()
        return web.Response(status=204)

    async def _attachment(self, request: web.Request) -> web.Response:
        blob = self._world.attachments.get(request.match_info["key"])
        if blob is None:
            return web.Response(status=404)
        return web.Response(body=blob, content_type="application/octet-stream")

    # -- messages ---------------------------------------------------------------------

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

    def _message_of(self, request: web.Request) -> Payload | None:
        message = self._world.messages.get(request.match_info["mid"])
        if message is None or message["channel_id"] != request.match_info["cid"]:
            return None
        return message

    async def _create_message(self, request: web.Request) -> web.Response:
        cid = request.match_info["cid"]
        if cid not in self._world.channels:
            return error_response(404)
        body, files = await self._read_body(request)
        content = body.get("content") or ""
        if len(content) > MESSAGE_LIMIT:
            return _too_long()
        if not (content or body.get("embeds") or body.get("components") or files):
            return error_response(400, "Cannot send an empty message", 50006)
        attachments = [self._world.add_attachment(name, blob) for name, blob in files]
        data = self._world.message(
            cid, self._world.bot["id"], content, mentions=[], attachments=attachments
        )
        data.update(embeds=body.get("embeds") or [], components=body.get("components") or [])
        record = SentMessage(
            id=data["id"],
            channel_id=cid,
            content=content,
            embeds=data["embeds"],
            components=data["components"],
            files=files,
            reference=body.get("message_reference"),
        )
        self.sent.append(record)
        self._sent_by_id[record.id] = record
        await self._gateway.dispatch("MESSAGE_CREATE", data)  # Discord echoes the bot's own
        await self._changes.notify()
        return json_response(data)

    async def _edit_message(self, request: web.Request) -> web.Response:
        message = self._message_of(request)
        if message is None:
            return error_response(404, "Unknown Message", 10008)
        if message["author"]["id"] != self._world.bot["id"]:
            return error_response(403, "Cannot edit a message authored by another user", 50005)
        body, _ = await self._read_body(request)
        if len(body.get("content") or "") > MESSAGE_LIMIT:
            return _too_long()
        changed = {k: v for k, v in body.items() if k in ("content", "embeds", "components")}
        message.update({k: v if v is not None else _EMPTY[k] for k, v in changed.items()})
        message["edited_timestamp"] = datetime.now(UTC).isoformat()
        record = self._sent_by_id.get(message["id"])
        if record is not None:
            if "content" in changed:
                record.content = message["content"]
                record.edits.append(record.content)
            record.embeds, record.components = message["embeds"], message["components"]
        self.edits.append({"id": message["id"], **body})
        await self._gateway.dispatch("MESSAGE_UPDATE", message)
        await self._changes.notify()
        return json_response(message)

    async def _delete_message(self, request: web.Request) -> web.Response:
        message = self._message_of(request)
        if message is None:
            return error_response(404, "Unknown Message", 10008)
        del self._world.messages[message["id"]]
        record = self._sent_by_id.get(message["id"])
        if record is not None:
            record.deleted = True
        self.deleted.append(message["id"])
        gone: Payload = {k: message[k] for k in ("id", "channel_id", "guild_id") if k in message}
        await self._gateway.dispatch("MESSAGE_DELETE", gone)
        await self._changes.notify()
        return web.Response(status=204)

    async def _callback(self, request: web.Request) -> web.Response:
        body, _ = await self._read_body(request)
        record = {"interaction_id": request.match_info["iid"], **body}
        self.callbacks.append(record)
        await self._changes.notify()
        interaction = {
            "id": request.match_info["iid"],
            "type": 3,
            "response_message_loading": False,
            "response_message_ephemeral": False,
        }
        return json_response(
            {"interaction": interaction, "resource": {"type": body.get("type", 6)}}
        )


_EMPTY: dict[str, Any] = {"content": "", "embeds": [], "components": []}


def _too_long() -> web.Response:
    return invalid_form(
        "content", "BASE_TYPE_MAX_LENGTH", f"Must be {MESSAGE_LIMIT} or fewer in length."
    )
