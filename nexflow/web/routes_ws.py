"""WebSockets: ``/ws/chat/{session}`` (streamed turns, acknowledged replies) and
``/ws/logs`` (live log lines).

Authentication, when a gateway token is set: an ``Authorization: Bearer`` header on
the handshake, or — for browsers, which cannot set headers — a first frame
``{"type": "auth", "token": "..."}`` within 10 seconds. Never a URL parameter. The
caller (owner or a ``web.users`` user, :mod:`nexflow.web.identity`) speaks as itself and
may only open its own sessions.

The frames a tab sends are in :mod:`nexflow.web.frames`. A tab that connects to a
session (or sends ``{"type": "resume"}``) gets what was parked for it: the session's
parked outbox items are made due and the outbox is woken. Replies carry their
``outbox_id`` and the tab acknowledges each with ``{"type": "ack", "outbox_id": N}``.
A binary frame or one over the size limit is answered with an error frame
(``binary_frame``, ``frame_too_large``) and the socket stays open. ``{"type": "stop"}``
stops the session's running turn (:mod:`nexflow.gateway.stop`): every tab of the
session gets ``{"type": "stopped", "message_id": N}``; this tab alone gets it with
``message_id: null`` when nothing was running.
"""

from __future__ import annotations

import asyncio
import contextlib

from fastapi import APIRouter, WebSocket, WebSocketDisconnect

from nexflow.bus.errors import Rejected
from nexflow.bus.events import InboundEvent
from nexflow.bus.streams import StreamEvent
from nexflow.gateway.stop import stopped_event
from nexflow.gateway.streaming import LIVE_KEY
from nexflow.storage.parking import OutboxParking
from nexflow.web.app import WebServices
from nexflow.web.frames import (
    JOINED,
    LEFT,
    AckFrame,
    AnyClientFrame,
    AuthFrame,
    MessageFrame,
    ResumeFrame,
    StopFrame,
    ack_event,
    ack_topic,
    parse_frame,
)
from nexflow.web.identity import CALLER_KEY, WebCaller, web_user

router = APIRouter()
AUTH_TIMEOUT_S = 10.0
CLOSE_UNAUTHORIZED = 4401
CLOSE_FORBIDDEN = 4403
CLOSE_UNKNOWN_SESSION = 4404


def _services(ws: WebSocket) -> WebServices:
    svc: WebServices = ws.app.state.services
    return svc


def max_frame_bytes(svc: WebServices) -> int:
    """The largest text frame read: a full message in 4-byte characters, plus room."""
    return svc.config.max_message_chars * 4 + 64 * 1024


async def _authenticate(ws: WebSocket, svc: WebServices) -> WebCaller | None:
    """The caller the guard identified from the handshake, or the one the first frame's
    token names (then stored where :func:`~nexflow.web.identity.caller_of` reads it)."""
    known = (ws.scope.get("state") or {}).get(CALLER_KEY)
    if isinstance(known, WebCaller):
        return known
    if ws.headers.get("authorization") is not None:
        return None  # a header that names nobody
    try:
        first = parse_frame(await asyncio.wait_for(ws.receive_text(), AUTH_TIMEOUT_S))
    except (TimeoutError, KeyError, WebSocketDisconnect):  # KeyError: a binary frame
        return None
    caller = (
        svc.auth.identify_token(first.token or None, loopback=False)
        if isinstance(first, AuthFrame)
        else None
    )
    if caller is not None:
        ws.scope.setdefault("state", {})[CALLER_KEY] = caller
        await ws.send_json({"type": "auth_ok"})
    return caller


async def _error(ws: WebSocket, code: str, message: str) -> None:
    await ws.send_json({"type": "error", "code": code, "message": message})


class _Follower:
    """The sessions one socket follows: their streams, forwarded to the socket, and the
    socket's presence announced to deliveries waiting for an acknowledgement."""

    def __init__(self, svc: WebServices, outgoing: asyncio.Queue[StreamEvent]) -> None:
        self._svc = svc
        self._outgoing = outgoing
        self._queues: dict[str, asyncio.Queue[StreamEvent]] = {}
        self._forwarders: list[asyncio.Task[None]] = []

    async def follow(self, session_id: str) -> None:
        if session_id not in self._queues:
            streams = self._svc.streams
            self._queues[session_id] = queue = streams.subscribe(session_id)
            self._forwarders.append(asyncio.create_task(_forward(queue, self._outgoing)))
            await streams.ready(session_id)  # other replicas' turns reach it from here on
            streams.publish(ack_topic(session_id), JOINED)
        await self.resume(session_id)

    async def resume(self, session_id: str) -> None:
        """Deliver what was parked for the session (nobody was there to acknowledge it)."""
        storage = self._svc.storage
        if not isinstance(storage, OutboxParking):
            return
        if await storage.unpark_session(session_id) and self._svc.notify is not None:
            self._svc.notify()

    def ack(self, session_id: str, outbox_id: int) -> None:
        if session_id in self._queues:
            self._svc.streams.publish(ack_topic(session_id), ack_event(outbox_id))

    async def close(self) -> None:
        for task in self._forwarders:
            task.cancel()
        await asyncio.gather(*self._forwarders, return_exceptions=True)
        streams = self._svc.streams
        for sid, queue in self._queues.items():
            streams.unsubscribe(sid, queue)
            streams.publish(ack_topic(sid), LEFT)


@router.websocket("/ws/chat/{session_id}")
async def chat_socket(ws: WebSocket, session_id: str) -> None:
    svc = _services(ws)
    await ws.accept()
    caller = await _authenticate(ws, svc)
    if caller is None:
        await ws.close(CLOSE_UNAUTHORIZED, "unauthorized")
        return
    current = None if session_id == "new" else session_id
    if current is not None and not await _may_open(ws, svc, current):
        return
    outgoing: asyncio.Queue[StreamEvent] = asyncio.Queue(4096)
    chat = _ChatSocket(ws, svc, caller, _Follower(svc, outgoing), current)
    writer = asyncio.create_task(_write(ws, outgoing))
    try:
        await chat.run()
    except WebSocketDisconnect:
        pass
    finally:
        writer.cancel()
        await asyncio.gather(writer, return_exceptions=True)
        await chat.follower.close()


async def _may_open(ws: WebSocket, svc: WebServices, session_id: str) -> bool:
    """The session exists and is the caller's; otherwise say why and close."""
    record = await svc.storage.get_session(session_id)
    if record is None:
        message = f"There is no session {session_id!r}; connect to /ws/chat/new."
        await _error(ws, "unknown_session", message)
        await ws.close(CLOSE_UNKNOWN_SESSION, "unknown session")
        return False
    if record.user_id != await web_user(ws):
        await _error(ws, "not_allowed", "That session belongs to someone else.")
        await ws.close(CLOSE_FORBIDDEN, "not your session")
        return False
    return True


class _ChatSocket:
    """One tab's chat socket: reads its frames, publishes its messages as the caller."""

    def __init__(
        self,
        ws: WebSocket,
        svc: WebServices,
        caller: WebCaller,
        follower: _Follower,
        current: str | None,
    ) -> None:
        self.ws = ws
        self.svc = svc
        self.caller = caller
        self.follower = follower
        self.current = current  # the session this socket is in (None: a new one)
        self.limit = max_frame_bytes(svc)

    async def run(self) -> None:
        if self.current is not None:
            await self.follower.follow(self.current)
            await self.ws.send_json({"type": "session", "id": self.current})
        while True:
            raw = await self.ws.receive()
            if raw["type"] == "websocket.disconnect":
                return
            text = raw.get("text")
            if text is None:
                await _error(
                    self.ws, "binary_frame", "Send JSON text frames; binary frames are not read."
                )
            elif len(text) * 4 > self.limit and len(text.encode()) > self.limit:
                await _error(
                    self.ws,
                    "frame_too_large",
                    f"The frame is larger than {self.limit} bytes (messages are limited "
                    f"to {self.svc.config.max_message_chars} characters).",
                )
            else:
                await self.on_frame(parse_frame(text))

    async def on_frame(self, frame: AnyClientFrame | None) -> None:
        current = self.current
        match frame:
            case AckFrame() if current is not None:
                self.follower.ack(current, frame.outbox_id)
            case ResumeFrame() if current is not None:
                await self.follower.resume(current)
            case StopFrame():
                stopped = None
                if current is not None:  # here or on the replica running it
                    stopped = await self.svc.gateway.stop_session(current, await web_user(self.ws))
                if stopped is None:  # nothing ran: only this tab needs to know
                    await self.ws.send_json(stopped_event(None))
            case MessageFrame():
                await self.say(frame.message)
            case None:
                await _error(
                    self.ws, "invalid_frame", 'Send {"type": "message", "message": "..."}.'
                )
            case _:
                pass  # an ack or resume before any session, or a repeated auth frame

    async def say(self, message: str) -> None:
        event = InboundEvent(
            channel="web",
            chat_id=self.current or "web",  # a new session's id is known once it is accepted
            sender_id=self.caller.sender_id,
            message=message,
            session_id=self.current,
            metadata={LIVE_KEY: True},  # this tab follows the turn as soon as it is accepted
        )
        try:
            accepted = await self.svc.gateway.publish(event)
        except Rejected as exc:
            await _error(self.ws, exc.reason, exc.user_message)
            return
        if accepted.immediate is not None:
            await self.ws.send_json({"type": "reply", "kind": "text", "text": accepted.immediate})
            return
        if self.current is None:
            self.current = accepted.session_id
            await self.follower.follow(self.current)  # before the turn streams to followers
            await self.ws.send_json({"type": "session", "id": self.current})
        await self.ws.send_json({"type": "accepted", "message_id": accepted.inbox_id})


async def _forward(source: asyncio.Queue[StreamEvent], sink: asyncio.Queue[StreamEvent]) -> None:
    while True:
        event = await source.get()
        if not sink.full():
            sink.put_nowait(event)


async def _write(ws: WebSocket, queue: asyncio.Queue[StreamEvent]) -> None:
    with contextlib.suppress(WebSocketDisconnect, RuntimeError):
        while True:
            await ws.send_json(await queue.get())


@router.websocket("/ws/logs")
async def logs_socket(ws: WebSocket) -> None:
    svc = _services(ws)
    await ws.accept()
    caller = await _authenticate(ws, svc)
    if caller is None:
        await ws.close(CLOSE_UNAUTHORIZED, "unauthorized")
        return
    if caller.role != "owner":  # the gateway's log is everyone's: the owner's only
        await ws.close(CLOSE_FORBIDDEN, "the log is the owner's")
        return
    queue = svc.logs.subscribe()
    try:
        reader = asyncio.create_task(ws.receive())  # notices the client going away
        while True:
            getter = asyncio.create_task(queue.get())
            done, _ = await asyncio.wait({getter, reader}, return_when=asyncio.FIRST_COMPLETED)
            if reader in done:
                getter.cancel()
                break
            await ws.send_text(getter.result())
    except WebSocketDisconnect:
        pass
    finally:
        svc.logs.unsubscribe(queue)
        reader.cancel()
