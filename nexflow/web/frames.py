"""The frames a tab sends on ``/ws/chat/{session}``, and how acknowledgements travel.

A tab sends one of :data:`ClientFrame` (JSON text frames):

- ``{"type": "auth", "token": "..."}`` — the first frame when the handshake carried no
  ``Authorization`` header;
- ``{"type": "message", "message": "..."}`` — say something (``type`` may be left out);
- ``{"type": "ack", "outbox_id": N}`` — the tab has the reply ``N``;
- ``{"type": "resume"}`` — the tab is ready: deliver what waited for it.

Delivery with acknowledgement goes through the session's :class:`~nexflow.bus.streams.StreamHub`
streams, the one thing the web connector and the sockets share. The connector publishes
``{"type": "reply", "outbox_id": N, ...}`` on the session's stream, which every socket of
the session forwards to its tab, and waits on :func:`ack_topic` of the session. A socket
publishes there the tab's ``ack`` and its own ``joined`` / ``left``: a delivery in flight
then reaches a tab that opens meanwhile, and ends at once when the last tab closes.
"""

from __future__ import annotations

import json
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, TypeAdapter

from nexflow.bus.streams import StreamEvent


def ack_topic(session_id: str) -> str:
    """The stream key acknowledgements of ``session_id``'s deliveries are published on."""
    return f"ack:{session_id}"


def ack_event(outbox_id: int) -> StreamEvent:
    return {"type": "ack", "outbox_id": outbox_id}


JOINED: StreamEvent = {"type": "joined"}
LEFT: StreamEvent = {"type": "left"}


class _Frame(BaseModel):
    model_config = ConfigDict(frozen=True, extra="ignore")


class MessageFrame(_Frame):
    type: Literal["message"] = "message"
    message: str


class AckFrame(_Frame):
    type: Literal["ack"]
    outbox_id: int


class ResumeFrame(_Frame):
    type: Literal["resume"]


class AuthFrame(_Frame):
    type: Literal["auth"]
    token: str = ""


ClientFrame = Annotated[
    MessageFrame | AckFrame | ResumeFrame | AuthFrame, Field(discriminator="type")
]
CLIENT_FRAME: TypeAdapter[MessageFrame | AckFrame | ResumeFrame | AuthFrame] = TypeAdapter(
    ClientFrame
)


def parse_frame(text: str) -> MessageFrame | AckFrame | ResumeFrame | AuthFrame | None:
    """The frame ``text`` holds (``type`` defaults to ``message``), or None."""
    try:
        data = json.loads(text)
    except ValueError:
        return None
    if not isinstance(data, dict):
        return None
    data.setdefault("type", "message")
    try:
        return CLIENT_FRAME.validate_python(data)
    except ValueError:
        return None
