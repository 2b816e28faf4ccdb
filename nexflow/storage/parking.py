"""What storage offers for acknowledged delivery and for a session's timeline.

An outbox item whose connector found nobody to acknowledge it (the web connector: no
open tab of the session) is *parked* (``outbox.status = 'parked'``): not due, no attempt
counted, not a failure. A tab that (re)connects to the session un-parks the session's
items and they are delivered in order. A parked item holds back the later items of its
own session only, never other chats or channels.

The session timeline (``GET /api/v1/sessions/{id}``) reads the messages with the turn
they belong to, the outbox rows of the session and the turns not answered yet.

These protocols extend the :class:`~nexflow.storage.base.Queue` aggregate; the
implementation (on SQLite and Postgres alike) is
:class:`~nexflow.storage.repo_queue.QueueRepo`.
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass
from typing import Any, Protocol, runtime_checkable

from nexflow.bus.events import Outbound
from nexflow.storage.base import Audit, Queue


@dataclass(frozen=True, slots=True)
class TurnMessage:
    """A stored message with the turn (inbox row) it belongs to; ``turn_at`` is when that
    turn was accepted (None for messages outside a turn)."""

    id: int
    inbox_id: int | None
    role: str
    content: str
    created_at: float
    turn_at: float | None
    tool_calls: list[dict[str, Any]] | None = None
    tool_call_id: str | None = None
    name: str | None = None


@dataclass(frozen=True, slots=True)
class SessionOutboxRow:
    """An outbox row of a session. ``status``: pending, parked, delivered or failed."""

    id: int
    inbox_id: int | None
    outbound: Outbound
    status: str
    created_at: float


@dataclass(frozen=True, slots=True)
class OpenTurn:
    """An accepted message of the session without a reply yet (running, waiting for an
    approval, or a dead letter)."""

    inbox_id: int
    message: str
    status: str
    created_at: float


@runtime_checkable
class OutboxParking(Protocol):
    async def park_outbox(self, outbox_id: int) -> None:
        """Park a pending item (no attempt counted); a no-op for any other status."""
        ...

    async def unpark_session(self, session_id: str) -> int:
        """Make the session's parked items due now; returns how many there were."""
        ...


@runtime_checkable
class TimelineStore(Protocol):
    async def turn_messages(self, session_id: str, limit: int) -> list[TurnMessage]:
        """The session's last ``limit`` messages, oldest first."""
        ...

    async def session_outbox(
        self, session_id: str, since: float, limit: int
    ) -> list[SessionOutboxRow]:
        """The session's outbox rows created at or after ``since`` (the newest ``limit``),
        oldest first."""
        ...

    async def open_turns(self, session_id: str, limit: int) -> list[OpenTurn]: ...

    async def approval_status(self, ids: Collection[str]) -> dict[str, str]:
        """The current status of these confirmation requests: ``pending``, ``approved``,
        ``declined``, ``expired`` or ``used`` (answered, the answer not known); unknown
        ids are left out."""
        ...


class ParkingStorage(Queue, Audit, OutboxParking, Protocol):
    """The storage the outbox dispatcher needs: the queue, parking, and the audit log
    (a delivery given up is audited)."""
