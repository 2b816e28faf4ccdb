"""WebSockets: ``/ws/chat/{session}`` (streamed turns) and ``/ws/logs`` (live log lines).

Authentication, when a gateway token is set: an ``Authorization: Bearer`` header on
the handshake, or — for browsers, which cannot set headers — a first frame
``{"type": "auth", "token": "..."}`` within 10 seconds. Never a URL parameter.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from typing import Any

from fastapi import APIRouter, WebSocket, WebSocketDisconnect

from nexflow.bus.errors import Rejected
from nexflow.bus.events import InboundEvent
from nexflow.bus.streams import StreamEvent
from nexflow.web.app import WebServices
from nexflow.web.routes_api import WEB_SENDER

router = APIRouter()
AUTH_TIMEOUT_S = 10.0
CLOSE_UNAUTHORIZED = 4401
CLOSE_UNKNOWN_SESSION = 4404


def _services(ws: WebSocket) -> WebServices:
    svc: WebServices = ws.app.state.services
    return svc


async def _authenticate(ws: WebSocket, svc: WebServices) -> bool:
    if not svc.auth.enabled:
        return True
    header = ws.headers.get("authorization")
    if header is not None:
        return svc.auth.check_header(header.encode())
    try:
        first = await asyncio.wait_for(ws.receive_json(), AUTH_TIMEOUT_S)
    except (TimeoutError, ValueError, WebSocketDisconnect):
        return False
    ok = (
        isinstance(first, dict)
        and first.get("type") == "auth"
        and svc.auth.check_token(str(first.get("token", "")))
    )
    if ok:
        await ws.send_json({"type": "auth_ok"})
    return ok


@router.websocket("/ws/chat/{session_id}")
async def chat_socket(ws: WebSocket, session_id: str) -> None:
    svc = _services(ws)
    await ws.accept()
    if not await _authenticate(ws, svc):
        await ws.close(CLOSE_UNAUTHORIZED, "unauthorized")
        return
    current: str | None = None if session_id == "new" else session_id
    if current is not None and await svc.storage.get_session(current) is None:
        await ws.send_json(
            {
                "type": "error",
                "code": "unknown_session",
                "message": f"There is no session {current!r}; connect to /ws/chat/new.",
            }
        )
        await ws.close(CLOSE_UNKNOWN_SESSION, "unknown session")
        return
    outgoing: asyncio.Queue[StreamEvent] = asyncio.Queue(4096)
    subscriptions: dict[str, asyncio.Queue[StreamEvent]] = {}

    def follow(sid: str) -> None:
        if sid not in subscriptions:
            subscriptions[sid] = svc.streams.subscribe(sid)
            forwarders.append(asyncio.create_task(_forward(subscriptions[sid], outgoing)))

    forwarders: list[asyncio.Task[None]] = []
    if current is not None:
        follow(current)
        await ws.send_json({"type": "session", "id": current})
    writer = asyncio.create_task(_write(ws, outgoing))
    try:
        while True:
            frame = await ws.receive_text()
            message = _parse(frame)
            if message is None:
                await ws.send_json(
                    {
                        "type": "error",
                        "code": "invalid_frame",
                        "message": 'Send {"type": "message", "message": "..."}.',
                    }
                )
                continue
            event = InboundEvent(
                channel="web",
                chat_id=current or "web",
                sender_id=WEB_SENDER,
                message=message,
                session_id=current,
            )
            try:
                accepted = await svc.gateway.publish(event)
            except Rejected as exc:
                await ws.send_json(
                    {"type": "error", "code": exc.reason, "message": exc.user_message}
                )
                continue
            if accepted.immediate is not None:
                await ws.send_json({"type": "reply", "kind": "text", "text": accepted.immediate})
                continue
            if current is None:
                current = accepted.session_id
                follow(current)
                await ws.send_json({"type": "session", "id": current})
            await ws.send_json({"type": "accepted", "message_id": accepted.inbox_id})
    except WebSocketDisconnect:
        pass
    finally:
        for task in (*forwarders, writer):
            task.cancel()
        await asyncio.gather(*forwarders, writer, return_exceptions=True)
        for sid, queue in subscriptions.items():
            svc.streams.unsubscribe(sid, queue)


def _parse(frame: str) -> str | None:
    try:
        data: Any = json.loads(frame)
    except ValueError:
        return None
    if not isinstance(data, dict) or data.get("type", "message") != "message":
        return None
    text = data.get("message")
    return text if isinstance(text, str) else None


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
    if not await _authenticate(ws, svc):
        await ws.close(CLOSE_UNAUTHORIZED, "unauthorized")
        return
    queue = svc.logs.subscribe()
    try:
        reader = asyncio.create_task(ws.receive_text())  # notices the client going away
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
