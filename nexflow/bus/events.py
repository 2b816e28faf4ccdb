"""The channel-neutral event envelope and the typed outbound messages.

Connectors turn platform updates into :class:`InboundEvent` and render :data:`Outbound`
values back. A connector declares which outbound kinds it renders
(:attr:`OutboundKind`); the rest are degraded to text with :func:`as_text`.
"""

from __future__ import annotations

import time
import uuid
from dataclasses import dataclass, field
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

OutboundKind = Literal["text", "panel_snapshot", "confirmation", "patch_review", "file"]


def new_id() -> str:
    return uuid.uuid4().hex


@dataclass(frozen=True, slots=True)
class Attachment:
    """A file that came with a message, already saved where the core can read it."""

    name: str
    path: str
    mime_type: str = "application/octet-stream"
    size: int = 0


@dataclass(frozen=True, slots=True)
class InboundEvent:
    """One message from a person, whatever the channel.

    ``external_id`` is the platform's id of the message (used to drop duplicate
    deliveries); ``sender_id`` the platform's id of the person; ``user_id`` the unified
    Nexflow identity, filled in by the identity middleware.
    """

    channel: str
    chat_id: str
    sender_id: str
    message: str
    id: str = field(default_factory=new_id)
    external_id: str | None = None
    user_id: str | None = None
    role: str = "user"
    session_id: str | None = None
    attachments: tuple[Attachment, ...] = ()
    metadata: dict[str, Any] = field(default_factory=dict)
    timestamp: float = field(default_factory=time.time)

    @property
    def dedup_key(self) -> str:
        return f"{self.channel}:{self.external_id or self.id}"


class _Out(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    channel: str
    chat_id: str
    session_id: str | None = None
    reply_to: str | None = None


class TextOut(_Out):
    kind: Literal["text"] = "text"
    text: str


class ButtonSpec(BaseModel):
    model_config = ConfigDict(frozen=True)

    label: str
    action: str


class PanelSnapshotOut(_Out):
    kind: Literal["panel_snapshot"] = "panel_snapshot"
    panel_id: str
    title: str
    text: str
    buttons: tuple[ButtonSpec, ...] = ()


class ConfirmationOut(_Out):
    """Ask the person to approve an action. ``detail`` is the exact command or change."""

    kind: Literal["confirmation"] = "confirmation"
    confirmation_id: str
    title: str
    detail: str
    expires_at: float


class PatchReviewOut(_Out):
    """A pending workspace patch to accept or reject. ``summary`` holds readable lines
    (target, state keys, NXML nodes); ``diff`` the unified diff, already cut to fit a chat
    message (it then ends with a line saying so); ``url`` the full diff on the web."""

    kind: Literal["patch_review"] = "patch_review"
    patch_id: str
    title: str
    diff: str
    summary: tuple[str, ...] = ()
    url: str = ""


class FileOut(_Out):
    kind: Literal["file"] = "file"
    path: str
    caption: str = ""


Outbound = TextOut | PanelSnapshotOut | ConfirmationOut | PatchReviewOut | FileOut


class OutboundEnvelope(BaseModel):
    """How an outbound message is stored in the outbox (a tagged union)."""

    item: Outbound = Field(discriminator="kind")


def as_text(out: Outbound) -> str:
    """The plain-text rendering used by connectors that cannot render a kind."""
    match out:
        case TextOut():
            return out.text
        case PanelSnapshotOut():
            actions = ", ".join(b.label for b in out.buttons)
            return f"{out.title}\n{out.text}" + (f"\n[{actions}]" if actions else "")
        case ConfirmationOut():
            return (
                f"Confirmation needed: {out.title}\n{out.detail}\n"
                f"Reply /confirm {out.confirmation_id} or /cancel {out.confirmation_id}"
            )
        case PatchReviewOut():
            return "\n".join(
                [
                    f"Patch {out.patch_id}: {out.title}",
                    *out.summary,
                    out.diff,
                    *([f"Full diff: {out.url}"] if out.url else []),
                    f"Reply /accept {out.patch_id} or /reject {out.patch_id}",
                ]
            )
        case FileOut():
            return f"{out.caption} ({out.path})".strip()
