"""The fake Discord gateway WebSocket: HELLO (op 10) → IDENTIFY (op 2) → READY and
GUILD_CREATE; heartbeats (op 1) are ACKed (op 11); RESUME (op 6) replays the dispatches
the client missed and sends RESUMED, or INVALID_SESSION (op 9) for an unknown session; a
wrong token closes the socket with 4004. Dispatches made while no socket is connected
are kept for the next RESUME."""

from __future__ import annotations

import contextlib
import json
import uuid
from collections.abc import Callable

from aiohttp import web

from nexflow.testing.fake_discord_model import Changes, Payload, Session
from nexflow.testing.fake_discord_world import World


class Gateway:
    """One session at a time; ``url`` is a callable because the port is known only once
    the server listens."""

    def __init__(
        self,
        world: World,
        changes: Changes,
        *,
        token: str,
        url: Callable[[], str],
        heartbeat_interval_ms: int,
    ) -> None:
        self._world = world
        self._changes = changes
        self._token = token
        self._url = url
        self.heartbeat_interval_ms = heartbeat_interval_ms
        self.identifies = 0
        self.resumes = 0
        self.session: Session | None = None
        self._socket: web.WebSocketResponse | None = None
        self._sockets: set[web.WebSocketResponse] = set()

    async def dispatch(self, event: str, data: Payload) -> None:
        """Send a dispatch (op 0) now, or keep it for the client's RESUME."""
        session = self.session
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

    async def drop(self, code: int = 4000) -> None:
        ws, self._socket = self._socket, None
        if ws is not None:
            await ws.close(code=code)

    async def close_sockets(self, _: web.Application) -> None:
        for ws in list(self._sockets):
            await ws.close(code=1001)

    async def handle(self, request: web.Request) -> web.WebSocketResponse:
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
        if data.get("token") != self._token:
            await ws.close(code=4004, message=b"Authentication failed.")
            return
        self.identifies += 1
        self.session = Session(uuid.uuid4().hex)
        self._socket = ws
        world = self._world
        ready = dict(
            v=10, user=world.bot, guilds=[{"id": world.guild_id, "unavailable": True}],
            session_id=self.session.id, resume_gateway_url=self._url(), shard=[0, 1],
            application={"id": world.bot["id"], "flags": 0}, private_channels=[],
            relationships=[], user_settings={}, presences=[], guild_join_requests=[],
        )  # fmt: skip
        await self.dispatch("READY", ready)
        await self.dispatch("GUILD_CREATE", world.guild())
        await self._changes.notify()

    async def _resume(self, ws: web.WebSocketResponse, data: Payload) -> None:
        session = self.session
        if (
            data.get("token") != self._token
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
        await self._changes.notify()
