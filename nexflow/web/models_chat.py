"""The answers of the chat, session, status and health routes (:mod:`nexflow.web.routes_api`).

A session's ``timeline`` (:mod:`nexflow.web.timeline`) is a union tagged by ``kind``; its
optional keys are only on the wire when the item has them, so the routes that answer
these models serialize with ``response_model_exclude_unset=True``."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, Field

from nexflow.bus.events import (
    ConfirmationOut,
    FileOut,
    PanelSnapshotOut,
    PatchReviewOut,
    TextOut,
)


class OutboundFile(FileOut):
    """The bus's FileOut under its own schema name (routes_files has another FileOut)."""


# An Outbound (nexflow.bus.events) as a card carries it, every field on the wire.
OutboundCard = Annotated[
    TextOut | PanelSnapshotOut | ConfirmationOut | PatchReviewOut | OutboundFile,
    Field(discriminator="kind"),
]


class ChatReply(BaseModel):
    """``POST /api/v1/chat``: the turn's reply (200, ``status: done``) or, when it did not
    finish in time, where to find it later (202, ``status: pending``)."""

    session: str | None = Field(description="The session the message went to")
    message_id: int | None = Field(
        description="The inbox id of the turn (None if answered at once)"
    )
    status: Literal["done", "pending"]
    reply: str | None = Field(description="The reply (None while pending)")
    tool_calls: list[dict[str, Any]] = Field(description="The tool calls the turn made")
    error: str | None = Field(None, description="Why the turn failed (only when it did)")


class MessageOut(BaseModel):
    """A stored message of the session; ``tool_calls`` and ``name`` only when it has them."""

    role: str
    content: str
    created_at: float
    tool_calls: list[dict[str, Any]] | None = None
    name: str | None = None


class UserItem(BaseModel):
    kind: Literal["user"]
    text: str
    pending: bool | None = Field(None, description="true: not answered yet (else absent)")
    status: str | None = Field(None, description="A pending turn's inbox status")


class AssistantItem(BaseModel):
    kind: Literal["assistant"]
    text: str
    outbox_id: int | None = Field(None, description="A turn's reply carries its outbox id")


class ToolCallItem(BaseModel):
    kind: Literal["tool_call"]
    name: str
    arguments: str
    label: str | None = Field(None, description="The call in plain words")


class ToolResultItem(BaseModel):
    kind: Literal["tool_result"]
    name: str
    ok: bool
    content: str


class CardItem(BaseModel):
    """A reply that is not plain text, or a message sent outside a turn, as it is now."""

    kind: Literal["card"]
    outbox_id: int
    delivered: bool
    status: str | None = Field(
        None,
        description="panel: live, gone, stale; task; a patch's status; a confirmation's",
    )
    reason: str | None = Field(None, description="A patch card: why it is in conflict")
    merge_commit: str | None = Field(None, description="A patch card: set once merged")
    outbound: OutboundCard


TimelineItem = Annotated[
    UserItem | AssistantItem | ToolCallItem | ToolResultItem | CardItem,
    Field(discriminator="kind"),
]


class SessionDetail(BaseModel):
    """``GET /api/v1/sessions/{id}``: the session's messages and its timeline."""

    id: str
    channel: str
    created_at: float
    updated_at: float
    messages: list[MessageOut]
    timeline: list[TimelineItem]


class ModelState(BaseModel):
    configured: bool
    name: str | None
    source: str | None
    help: str | None


class CallerInfo(BaseModel):
    role: Literal["owner", "user"]
    name: str
    via: Literal["token", "loopback", "user_token"]


class GatewayStatus(BaseModel):
    """``GET /api/v1/status``."""

    version: str
    model: ModelState
    queue_depth: int
    auth: bool = Field(description="The gateway asks for a token")
    caller: CallerInfo
    language: str | None = Field(description="The language the caller chose in a chat (/lang)")


class Health(BaseModel):
    status: Literal["ok"]
    version: str


class Readiness(BaseModel):
    """``GET /ready``: 200 ``ready`` or 503 ``storage unavailable``."""

    status: Literal["ready", "storage unavailable"]
