"""The records the statistics queries return (:mod:`nexflow.storage.repo_stats`).

They are read from the audit log (``tool_call``, ``skill_run``, ``message_in`` rows), the
messages of the user's sessions, ``llm_usage`` (tokens and cost, the rows the budget gate
settles), the inbox (dead letters) and the approvals. ``user_id`` None everywhere means
every user (the owner's ``?all=true``).

A call *fails* when its outcome is anything but a success: ``ok`` for a tool call (so
``error``, ``timeout``, ``crash``), ``ran`` for a skill run (so ``failed``, ``denied``,
``declined``, ``refused``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

CallKind = Literal["tool_call", "skill_run"]
SUCCESS: dict[CallKind, str] = {"tool_call": "ok", "skill_run": "ran"}


@dataclass(frozen=True, slots=True)
class ToolUsage:
    """One tool's (``tool_call``) or skill's (``skill_run``) calls since a time."""

    kind: CallKind
    name: str
    calls: int
    failures: int
    last_used: float | None

    @property
    def failure_rate(self) -> float:
        return round(self.failures / self.calls, 4) if self.calls else 0.0


@dataclass(frozen=True, slots=True)
class Invocations:
    """One tool's or skill's calls on one UTC day, with their durations in seconds."""

    day: str  # YYYY-MM-DD, UTC
    kind: CallKind
    name: str
    calls: int
    failures: int
    mean_s: float | None  # None: no call recorded a duration
    p95_s: float | None  # nearest rank


@dataclass(frozen=True, slots=True)
class ModelUsage:
    """One model's calls, tokens and cost (``llm_usage``; charges that are not model calls
    are left out)."""

    model: str
    calls: int = 0
    tokens_in: int = 0
    tokens_out: int = 0
    cost_usd: float = 0.0


@dataclass(frozen=True, slots=True)
class Activity:
    """What happened in one window: messages in (the user's) and out (the replies: no tool
    calls) of the user's sessions, completed turns, tool calls and skill runs with their
    failures, model use."""

    messages_in: int
    messages_out: int
    turns: int
    tool_calls: int
    tool_failures: int
    skill_runs: int
    skill_failures: int
    models: tuple[ModelUsage, ...]


@dataclass(frozen=True, slots=True)
class Backlog:
    """What waits now: dead letters (turns set aside) and approvals not yet answered."""

    dead_letters: int
    pending_approvals: int
