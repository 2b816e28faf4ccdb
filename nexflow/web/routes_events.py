"""``WS /ws/events``: the caller's live events (panels, toasts, patches, files, layout).

Authentication is that of ``/ws/chat`` (a handshake header, or a first
``{"type": "auth", "token"}`` frame). The socket then receives every
:data:`~nexflow.web.events.EventFrame` about objects the caller owns, and answers
``{"type": "ping"}`` with ``{"type": "pong"}``. Frames are documented in
``docs/graphstudio/workspace.md``.
"""

from __future__ import annotations

import asyncio
import contextlib
from typing import Any

from fastapi import APIRouter, WebSocket, WebSocketDisconnect
from pydantic import ValidationError

from nexflow.web.app import WebServices
from nexflow.web.events import CLIENT_FRAME, ClientPing, Pong
from nexflow.web.identity import web_user
from nexflow.web.routes_ws import CLOSE_UNAUTHORIZED, _authenticate, _write

router = APIRouter()
CLOSE_UNAVAILABLE = 1013


@router.websocket("/ws/events")
async def events_socket(ws: WebSocket) -> None:
    svc: WebServices = ws.app.state.services
    await ws.accept()
    caller = await _authenticate(ws, svc)
    if caller is None:
        await ws.close(CLOSE_UNAUTHORIZED, "unauthorized")
        return
    hub = svc.events
    if hub is None:
        await ws.close(CLOSE_UNAVAILABLE, "events are not enabled")
        return
    owner = await web_user(ws)
    queue = hub.subscribe(owner)
    writer = asyncio.create_task(_write(ws, queue))
    try:
        await hub.ready(owner)  # frames from other replicas reach it (before the first pong)
        await _read(ws, queue)
    except WebSocketDisconnect:
        pass
    finally:
        hub.unsubscribe(owner, queue)
        writer.cancel()
        await asyncio.gather(writer, return_exceptions=True)


async def _read(ws: WebSocket, queue: asyncio.Queue[dict[str, Any]]) -> None:
    while True:
        raw = await ws.receive()
        if raw["type"] == "websocket.disconnect":
            return
        text = raw.get("text")
        try:
            frame = CLIENT_FRAME.validate_json(text or "")
        except ValidationError:
            await ws.send_json(
                {"type": "error", "code": "invalid_frame", "message": 'Send {"type": "ping"}.'}
            )
            continue
        if isinstance(frame, ClientPing):
            with contextlib.suppress(asyncio.QueueFull):  # after the frames queued before
                queue.put_nowait(Pong().model_dump(mode="json"))
