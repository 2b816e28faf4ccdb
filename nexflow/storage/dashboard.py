"""The records the dashboard queries return (:mod:`nexflow.storage.repo_dashboard`):
queue counts, model use per day, and users with their identities. ``user_id`` None means
every user (the owner's ``?all=true``)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class QueueCounts:
    """Inbox (turns) and outbox (replies) rows per status."""

    inbox: dict[str, int]
    outbox: dict[str, int]


@dataclass(frozen=True, slots=True)
class DayUsage:
    """One model's use on one UTC day (a ``llm_usage`` sum over users and scopes)."""

    day: str
    model: str
    calls: int
    tokens_in: int
    tokens_out: int
    cost_usd: float


@dataclass(frozen=True, slots=True)
class IdentityRow:
    channel: str
    external_id: str
    created_at: float


@dataclass(frozen=True, slots=True)
class UserRow:
    """A user, their identities on every channel and their model use since a day."""

    id: str
    name: str
    role: str
    lang: str | None
    created_at: float
    identities: tuple[IdentityRow, ...]
    sessions: int
    calls: int
    tokens_in: int
    tokens_out: int
    cost_usd: float
