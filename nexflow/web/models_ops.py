"""Response models of the operations routes: pairing requests (:mod:`.routes_pairing`),
skills and confirmations (:mod:`.routes_skills`) and dead letters (:mod:`.routes_turns`)."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, Field, JsonValue

from nexflow.storage.base import ApprovalAnswer
from nexflow.web.models_common import ErrorBody

# -- pairing ---------------------------------------------------------------------------


class PairingOut(BaseModel):
    """A live pairing request (an unknown sender waiting for the owner)."""

    channel: str
    code: str = Field(description="What the sender was told")
    sender_id: str
    chat_id: str
    name: str
    lang: str | None
    created_at: float = Field(description="Epoch seconds")
    expires_at: float


class PairingApproved(PairingOut):
    status: Literal["approved"]
    user_id: str = Field(description="The user created for the sender")


class PairingDenied(PairingOut):
    status: Literal["denied"]


PairingDecision = Annotated[PairingApproved | PairingDenied, Field(discriminator="status")]

# -- skills and confirmations ----------------------------------------------------------


class SkillSummary(BaseModel):
    name: str
    description: str
    emoji: str | None
    available: bool
    reason: str | None = Field(description="Why it is not available")
    runnable: bool = Field(description="False: instructions only, nothing to run")
    permissions: list[str]
    source: str = Field(description="Its SKILL.md")
    warnings: list[str]


class SkillRun(BaseModel):
    """A skill that ran (``ok`` false: it failed, e.g. a non-zero exit code)."""

    ok: bool
    output: str = Field(description="Its stdout (capped)")
    data: JsonValue = Field(description="The output parsed as JSON, if it is JSON")
    error: str | None
    exit_code: int | None
    duration_ms: float
    truncated: bool
    timed_out: bool
    killed_reason: str | None
    stderr_tail: str


class SkillRefused(BaseModel):
    """A skill that was not run (permissions, availability, bad input)."""

    ok: bool = Field(description="Always false")
    output: str
    error: str
    exit_code: None
    duration_ms: float


class PendingConfirmation(BaseModel):
    """A request for the user's approval of one exact action."""

    id: str
    title: str
    detail: str = Field(description="The exact command or change")
    status: str = Field(description="pending, approved, declined, expired or used")
    channel: str
    session: str | None
    created_at: float
    expires_at: float


class ConfirmationRequired(ErrorBody):
    """409: repeat the call with ``Nexflow-Confirmation: <confirmation.id>`` to run it."""

    confirmation: PendingConfirmation


class ConfirmationAnswered(BaseModel):
    outcome: ApprovalAnswer


# -- dead letters ----------------------------------------------------------------------


class DeadLetterOut(BaseModel):
    """A turn that failed all of its attempts."""

    id: int = Field(description="Its inbox id (retry it with this)")
    channel: str
    chat_id: str
    user_id: str | None
    session: str | None
    message: str = Field(description="The message (its first 2000 characters)")
    attempts: int
    error: str = Field(description="The last attempt's error")
    updated_at: float


class RetryQueued(BaseModel):
    id: int
    status: Literal["pending"]
