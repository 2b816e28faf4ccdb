"""What a reminder is, who it belongs to, and the callbacks the gateway injects."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Literal

Deliver = Callable[[str, str, str, str], Awaitable[None]]
"""``deliver(channel, chat_id, session_id, text)``: send a fired reminder to its chat.

The gateway wires it to ``OutboxDispatcher.post(TextOut(...))``, so the
message is durable once the call returns."""

Budget = Callable[[str, str], Awaitable[str | None]]
"""``budget(user_id, action) -> refusal or None``; ``action`` is ``"add"`` or ``"fire"``.

An optional hook point for per-user budgets. Return None to allow, or a short text that
says why not (shown to the user on ``add``; logged and the delivery skipped on ``fire``)."""

Kind = Literal["once", "cron"]


@dataclass(frozen=True, slots=True)
class ReminderTarget:
    """Who created the reminder and where it goes back to."""

    user_id: str
    channel: str
    chat_id: str
    session_id: str


@dataclass(frozen=True, slots=True)
class Reminder:
    """One scheduled reminder. ``schedule`` is the ISO due time (``once``) or the crontab
    expression (``cron``); ``next_run`` is None only while it is being delivered."""

    id: str
    target: ReminderTarget
    text: str
    kind: Kind
    schedule: str
    timezone: str
    created_at: datetime
    next_run: datetime | None

    def job_kwargs(self) -> dict[str, Any]:
        """What the job store keeps (plain, picklable values only)."""
        return {
            "user_id": self.target.user_id,
            "channel": self.target.channel,
            "chat_id": self.target.chat_id,
            "session_id": self.target.session_id,
            "text": self.text,
            "kind": self.kind,
            "schedule": self.schedule,
            "timezone": self.timezone,
            "created_at": self.created_at.timestamp(),
        }

    @classmethod
    def from_job(
        cls, job_id: str, kwargs: Mapping[str, Any], next_run: datetime | None
    ) -> Reminder:
        kind: Kind = "cron" if kwargs.get("kind") == "cron" else "once"
        return cls(
            id=job_id,
            target=ReminderTarget(
                str(kwargs["user_id"]),
                str(kwargs["channel"]),
                str(kwargs["chat_id"]),
                str(kwargs["session_id"]),
            ),
            text=str(kwargs["text"]),
            kind=kind,
            schedule=str(kwargs["schedule"]),
            timezone=str(kwargs["timezone"]),
            created_at=datetime.fromtimestamp(float(kwargs["created_at"]), UTC),
            next_run=next_run,
        )

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "text": self.text,
            "kind": self.kind,
            "schedule": self.schedule,
            "timezone": self.timezone,
            "next_run": self.next_run.isoformat() if self.next_run else None,
            "channel": self.target.channel,
            "chat_id": self.target.chat_id,
        }
