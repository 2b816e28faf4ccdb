"""The frames a tab sends on ``/ws/chat/{session}``, and how acknowledgements travel.

A tab sends one of :data:`ClientFrame` (JSON text frames):

- ``{"type": "auth", "token": "..."}`` — the first frame when the handshake carried no
  ``Authorization`` header;
- ``{"type": "message", "message": "..."}`` — say something (``type`` may be left out);
- ``{"type": "ack", "outbox_id": N}`` — the tab has the reply ``N``;
- ``{"type": "resume"}`` — the tab is ready: deliver what waited for it;
- ``{"type": "stop"}`` — stop the session's running turn (answered ``stopped``).

The server's frames are :data:`ServerFrame` (one typed union, documented for the app's
generated types; the socket sends them as plain dicts from the session's stream).

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


class StopFrame(_Frame):
    type: Literal["stop"]


AnyClientFrame = MessageFrame | AckFrame | ResumeFrame | AuthFrame | StopFrame
ClientFrame = Annotated[AnyClientFrame, Field(discriminator="type")]
CLIENT_FRAME: TypeAdapter[AnyClientFrame] = TypeAdapter(ClientFrame)


# -- server frames ------------------------------------------------------------------------


class _Out(BaseModel):
    model_config = ConfigDict(extra="allow")  # a reply carries its Outbound's own fields


class AuthOkOut(_Out):
    type: Literal["auth_ok"]


class SessionOut(_Out):
    type: Literal["session"]
    id: str


class AcceptedOut(_Out):
    type: Literal["accepted"]
    message_id: int


class TokenOut(_Out):
    type: Literal["token"]
    text: str


class ToolCallOut(_Out):
    type: Literal["tool_call"]
    name: str
    arguments: str
    label: str = Field("", description="The call in plain words, in the session's language")


class ToolResultOut(_Out):
    type: Literal["tool_result"]
    name: str
    ok: bool
    content: str


class ReplyOut(_Out):
    """A turn's reply or any message for the session: an Outbound's JSON (``kind``:
    text, confirmation, panel_snapshot, patch_review, file …); acknowledge ``outbox_id``."""

    type: Literal["reply"]
    kind: str
    outbox_id: int | None = None


class StoppedOut(_Out):
    type: Literal["stopped"]
    message_id: int | None = None


class ErrorOut(_Out):
    type: Literal["error"]
    code: str = ""
    message: str


AnyServerFrame = (
    AuthOkOut
    | SessionOut
    | AcceptedOut
    | TokenOut
    | ToolCallOut
    | ToolResultOut
    | ReplyOut
    | StoppedOut
    | ErrorOut
)
ServerFrame = Annotated[AnyServerFrame, Field(discriminator="type")]
SERVER_FRAME: TypeAdapter[AnyServerFrame] = TypeAdapter(ServerFrame)


def parse_frame(text: str) -> AnyClientFrame | None:
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
