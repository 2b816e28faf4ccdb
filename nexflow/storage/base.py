"""The repository interfaces and the records they speak.

One :class:`~typing.Protocol` per aggregate, each implemented by one repository module
(SQLite and Postgres alike, the same queries), and :class:`Storage`, their composition,
which is what the gateway is built on. A consumer asks for the narrowest one it needs:

============== ======================================================== =====================
protocol       what                                                     repository
============== ======================================================== =====================
Identities     users, identities, languages, pairing, link codes        ``repo_identity``
Sessions       sessions and their message history                       ``repo_sessions``
Queue          inbox (accepted events) and outbox (replies to deliver)  ``repo_queue``
Turns          runs, parked turns, approvals, dead letters              ``repo_turns``
Audit          the audit log                                            ``repo_audit``
Tasks          background task records                                  ``repo_audit``
Stats          statistics over audit, messages, usage and queues        ``repo_stats``
Dashboard      queue counts, use per day, the users overview            ``repo_dashboard``
Hooks          webhook deliveries already seen (replay protection)      ``repo_hooks``
============== ======================================================== =====================

Outside :class:`Storage`, the same :class:`~nexflow.storage.sql_storage.SQLStorage` is
also: ``FlowStorage`` (``repo_flows``: flow tool results and approvals), the outbox
claims and parking (``repo_queue``, :mod:`nexflow.storage.parking`), LLM usage and
reservations (``repo_usage``, asked for as ``nexflow.llm.budget.UsageStore``), agent
invocations (``repo_agents``, ``nexflow.gateway.agents.InvocationStorage``) and session
leases (``repo_leases``, ``nexflow.gateway.replicas.ReplicaStore``). Three aggregates
live in their own packages: panels (``nexflow.panels.runtime.store.PanelStore``) and
workspace patches (``nexflow.workspace.store.PatchStore``) are stores over this same
connection, given it by their wiring; the memory index (:mod:`nexflow.memory`) has its own
database (``memory.db`` on SQLite, the ``memory_`` tables and a connection of its own on
Postgres), since it can be dropped and rebuilt from the Markdown files.

**One transaction per turn.** The aggregates are separate interfaces, not separate
databases: every repository is a mixin over the one connection (:mod:`.connection`),
and a transition that touches several aggregates is one function on that connection
inside one ``BEGIN … COMMIT``. A turn is a short series of such transitions, and never
holds a transaction open while the model or a tool runs:

1. :meth:`Turns.begin_turn`: claim the inbox row (``SKIP LOCKED`` on Postgres), count the
   attempt, read the session, its history, the checkpoint and the user's answers.
2. The model and the tools run with no transaction open. The turn's messages and audit
   records (its model and tool calls) are collected in memory; only the budget's usage
   records, and what a tool keeps in a store of its own, are written meanwhile.
3. Exactly one of :meth:`Queue.complete` (the turn's messages, its audit records, the
   reply and any files in the outbox, the inbox row ``done``, the checkpoint deleted and
   its answers used), :meth:`Turns.park_turn` (checkpoint, approval, the question in the
   outbox, audit), :meth:`Turns.fail_turn` or :meth:`Turns.bury_turn` commits the result,
   all of it or none (on Postgres after checking the session lease's fence in the same
   transaction). A crash before that commit leaves the turn ``running``; it runs again.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol

from nexflow.bus.events import InboundEvent, Outbound
from nexflow.storage.dashboard import DayUsage, QueueCounts, UserRow
from nexflow.storage.stats import Activity, Backlog, Invocations, ToolUsage


class StorageError(Exception):
    """The database could not do what was asked."""


@dataclass(frozen=True, slots=True)
class SessionRecord:
    id: str
    user_id: str
    channel: str
    chat_id: str
    title: str
    created_at: float
    updated_at: float


@dataclass(frozen=True, slots=True)
class SessionSummary:
    """A conversation as a list shows it: ``title`` is the first thing the user said
    (trimmed), ``messages`` counts what the user and the assistant said."""

    id: str
    channel: str
    title: str
    created_at: float
    updated_at: float
    messages: int


@dataclass(frozen=True, slots=True)
class MessageRecord:
    id: int
    session_id: str
    role: str
    content: str
    created_at: float
    tool_calls: list[dict[str, Any]] | None = None
    tool_call_id: str | None = None
    name: str | None = None


@dataclass(frozen=True, slots=True)
class NewMessage:
    """A message to append to a session's history."""

    role: str
    content: str
    tool_calls: list[dict[str, Any]] | None = None
    tool_call_id: str | None = None
    name: str | None = None


@dataclass(frozen=True, slots=True)
class InboxItem:
    id: int
    event: InboundEvent
    status: str
    attempts: int


ApprovalAnswer = Literal["approved", "declined", "expired", "unknown", "not_yours"]


@dataclass(frozen=True, slots=True)
class ApprovalRecord:
    """A request for the user's approval of one exact call (``call_key``). ``inbox_id`` is
    the parked turn it belongs to (None: an HTTP request answered by repeating the call).
    ``status``: pending, approved, declined, expired, used (an answer works once)."""

    id: str
    inbox_id: int | None
    user_id: str
    channel: str
    chat_id: str
    session_id: str | None
    title: str
    detail: str
    call_key: str
    status: str = "pending"
    created_at: float = 0.0
    expires_at: float = 0.0
    decided_at: float | None = None

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "title": self.title,
            "detail": self.detail,
            "status": self.status,
            "channel": self.channel,
            "session": self.session_id,
            "created_at": self.created_at,
            "expires_at": self.expires_at,
        }


@dataclass(frozen=True, slots=True)
class TurnStart:
    """What a worker needs to run (or resume) a turn, read when its run starts.

    ``checkpoint`` is the parked turn's stored state (None for a fresh turn, which gets
    its ``history`` instead); ``decisions`` the user's answers by call key; ``dead``: the
    turn has used up its attempts and must not run."""

    item: InboxItem
    session: SessionRecord
    history: list[MessageRecord]
    checkpoint: str | None
    decisions: dict[str, bool]
    dead: bool = False


@dataclass(frozen=True, slots=True)
class DeadLetter:
    """A turn that failed ``bus.max_attempts`` times and is kept, never replayed silently."""

    inbox_id: int
    event: InboundEvent
    attempts: int
    last_error: str
    updated_at: float

    def to_json(self) -> dict[str, Any]:
        e = self.event
        return {
            "id": self.inbox_id,
            "channel": e.channel,
            "chat_id": e.chat_id,
            "user_id": e.user_id,
            "session": e.session_id,
            "message": e.message[:2000],
            "attempts": self.attempts,
            "error": self.last_error,
            "updated_at": self.updated_at,
        }


@dataclass(frozen=True, slots=True)
class OutboxItem:
    id: int
    outbound: Outbound
    attempts: int
    inbox_id: int | None
    status: str = "pending"
    last_error: str | None = None


@dataclass(frozen=True, slots=True)
class AuditRecord:
    """One action worth keeping: an LLM call, a tool call, a delivery, a denial."""

    kind: str
    name: str
    outcome: str = "ok"
    user_id: str | None = None
    session_id: str | None = None
    data: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class PairingRequest:
    """An unknown sender waiting for the owner's approval; ``code`` is what they were told."""

    channel: str
    code: str
    sender_id: str
    chat_id: str
    name: str
    lang: str | None
    created_at: float
    expires_at: float


@dataclass(frozen=True, slots=True)
class TaskRecord:
    id: str
    kind: str
    status: str
    payload: dict[str, Any]
    result: dict[str, Any] | None
    progress: float
    created_at: float
    updated_at: float


class Identities(Protocol):
    """Users and their identities on each channel, pairing of unknown senders and linking
    one user across channels (``repo_identity``)."""

    async def find_user(self, channel: str, external_id: str) -> tuple[str, str] | None:
        """``(user id, role)`` of ``channel:external_id``; None if unknown."""
        ...

    async def create_user(self, name: str, role: str, channel: str, external_id: str) -> str:
        """The user of ``channel:external_id``, created if new. An ``owner`` identity joins
        the existing owner user: the owner is one person on every channel."""
        ...

    async def user_lang(self, user_id: str) -> str | None: ...
    async def set_user_lang(self, user_id: str, lang: str) -> None: ...

    async def pairing_request(
        self, channel: str, sender_id: str, chat_id: str, name: str, lang: str | None, ttl_s: float
    ) -> tuple[PairingRequest, bool]:
        """The sender's live request, or a new one (then the flag is True)."""
        ...

    async def pairing_requests(self) -> list[PairingRequest]: ...
    async def approve_pairing(self, channel: str, code: str) -> tuple[PairingRequest, str] | None:
        """Create the user (role ``user``) and identity; audited. None if no live request."""
        ...

    async def deny_pairing(self, channel: str, code: str) -> PairingRequest | None: ...
    async def issue_link_code(self, user_id: str, ttl_s: float) -> str:
        """A fresh code for ``user_id`` (replacing any earlier one)."""
        ...

    async def redeem_link_code(self, code: str, channel: str, external_id: str) -> str | None:
        """Attach ``channel:external_id`` to the code's user; audited. None if no live code."""
        ...


class Sessions(Protocol):
    """Sessions and their message history (``repo_sessions``). Messages are written by
    the transition that ends a turn (:meth:`Queue.complete`), not here."""

    async def ensure_session(
        self, session_id: str | None, user_id: str, channel: str, chat_id: str
    ) -> SessionRecord:
        """The session ``session_id`` (a new id if None), created if new."""
        ...

    async def chat_session(self, user_id: str, channel: str, chat_id: str) -> SessionRecord:
        """The chat's newest session of the user, created if there is none."""
        ...

    async def get_session(self, session_id: str) -> SessionRecord | None: ...
    async def list_sessions(self, user_id: str | None, limit: int) -> list[SessionRecord]: ...
    async def session_summaries(
        self, user_id: str, query: str | None, limit: int
    ) -> list[SessionSummary]:
        """``user_id``'s conversations, newest first; with ``query``, only those whose
        messages contain it (case-insensitive)."""
        ...

    async def history(self, session_id: str, limit: int) -> list[MessageRecord]:
        """The session's last ``limit`` messages, oldest first."""
        ...

    async def session_messages(
        self, session_id: str, after_id: int, until_id: int | None, limit: int
    ) -> list[MessageRecord]:
        """The session's messages with ``after_id < id <= until_id``, oldest first."""
        ...


class Queue(Protocol):
    """Inbox → outbox, the exactly-once path (``repo_queue``)."""

    async def accept(self, event: InboundEvent) -> tuple[int, bool]:
        """The event's inbox id, and True if it was accepted before (same dedup key)."""
        ...

    async def pending_inbox(self) -> list[InboxItem]: ...
    async def get_inbox(self, inbox_id: int) -> InboxItem | None: ...
    async def complete(
        self,
        inbox_id: int,
        messages: Sequence[NewMessage],
        reply: Outbound,
        audit: Sequence[AuditRecord] = (),
        *,
        delivered: bool = False,
        extra: Sequence[Outbound] = (),
    ) -> int:
        """The turn's result in one transaction; ``delivered``: the reply already reached
        its reader (the HTTP caller waiting for it), so the outbox only records it;
        ``extra``: more messages for the same chat after the reply (files the turn sends),
        in the same transaction, so they go out exactly once too."""
        ...

    async def enqueue(self, outbound: Outbound) -> int: ...
    async def due_outbox(self, now: float, limit: int) -> list[OutboxItem]: ...
    async def next_outbox_due(self) -> float | None: ...
    async def get_outbox(self, outbox_id: int) -> OutboxItem | None: ...
    async def outbox_for_inbox(self, inbox_id: int) -> OutboxItem | None: ...
    async def reply_or_dead_letter(self, inbox_id: int) -> OutboxItem | InboxItem | None: ...
    async def mark_delivered(self, outbox_id: int) -> None: ...
    async def mark_retry(self, outbox_id: int, error: str, next_attempt_at: float) -> None: ...
    async def mark_failed(self, outbox_id: int, error: str) -> None: ...


class Turns(Protocol):
    """Durable turns (``repo_turns``): runs counted, parked turns, approvals, dead letters.
    The implementation's transitions also take a session lease's fence (keyword
    ``fence``; ``nexflow.gateway.turns.TurnStorage`` asks for it)."""

    async def begin_turn(
        self, inbox_id: int, history_limit: int, max_attempts: int
    ) -> TurnStart | None: ...
    async def park_turn(
        self,
        inbox_id: int,
        checkpoint: str,
        approval: ApprovalRecord,
        ask: Outbound,
        audit: Sequence[AuditRecord] = (),
    ) -> int: ...
    async def fail_turn(self, inbox_id: int, error: str, max_attempts: int) -> str: ...
    async def bury_turn(
        self, inbox_id: int, error: str, notice: Outbound | None, audit: Sequence[AuditRecord]
    ) -> None: ...
    async def expired_turns(self, now: float) -> list[tuple[ApprovalRecord, InboxItem, str]]: ...
    async def next_approval_expiry(self) -> float | None: ...
    async def answer_approval(
        self,
        approval_id: str,
        user_id: str,
        approve: bool,
        *,
        channel: str | None = None,
        chat_id: str | None = None,
        session_id: str | None = None,
    ) -> tuple[ApprovalAnswer, ApprovalRecord | None]: ...
    async def issue_approval(self, approval: ApprovalRecord) -> None: ...
    async def consume_approval(self, approval_id: str, user_id: str, call_key: str) -> bool: ...
    async def approvals_for(
        self, user_id: str | None, status: str = "pending"
    ) -> list[ApprovalRecord]: ...
    async def get_approval(self, approval_id: str) -> ApprovalRecord | None: ...
    async def dead_letters(self, user_id: str | None, limit: int) -> list[DeadLetter]: ...
    async def retry_dead(self, inbox_id: int) -> InboxItem | None: ...


class Audit(Protocol):
    """The audit log (``repo_audit``). A turn's own records are written with its result
    (:meth:`Queue.complete`, :meth:`Turns.park_turn`, :meth:`Turns.bury_turn`); this is
    for everything else."""

    async def audit(self, records: Sequence[AuditRecord]) -> None: ...
    async def audit_tail(self, limit: int, kind: str | None = None) -> list[dict[str, Any]]:
        """The newest ``limit`` records (of ``kind``), newest first."""
        ...


class Tasks(Protocol):
    """Background task records (``repo_audit``)."""

    async def create_task(self, kind: str, payload: dict[str, Any]) -> TaskRecord: ...
    async def get_task(self, task_id: str) -> TaskRecord | None: ...
    async def update_task(
        self,
        task_id: str,
        *,
        status: str | None = None,
        progress: float | None = None,
        result: dict[str, Any] | None = None,
    ) -> None: ...


class Stats(Protocol):
    """Statistics (``repo_stats``); ``user_id`` None: everyone."""

    async def tool_usage(self, user_id: str | None, since: float = 0.0) -> list[ToolUsage]: ...
    async def invocations(
        self, user_id: str | None, since: float, name: str | None = None
    ) -> list[Invocations]: ...
    async def activity(self, user_id: str | None, since: float, first_day: str) -> Activity: ...
    async def backlog(self, user_id: str | None, now: float) -> Backlog: ...


class Dashboard(Protocol):
    """The dashboard's queries (``repo_dashboard``); ``user_id`` None: everyone."""

    async def queue_counts(self, user_id: str | None) -> QueueCounts: ...
    async def usage_per_day(self, user_id: str | None, first_day: str) -> list[DayUsage]: ...
    async def users_overview(self, first_day: str) -> list[UserRow]: ...


class Hooks(Protocol):
    """Webhook deliveries already seen (``repo_hooks``; :mod:`nexflow.hooks.replay`)."""

    async def remember_delivery(self, hook: str, delivery: str, now: float, keep_s: float) -> bool:
        """Record a webhook delivery; True if new (entries older than ``keep_s`` are dropped)."""
        ...


class Storage(Identities, Sessions, Queue, Turns, Audit, Tasks, Stats, Dashboard, Hooks, Protocol):
    """Everything the gateway persists: every aggregate, on one connection. All methods
    are safe to await from the event loop."""

    async def open(self) -> None: ...
    async def close(self) -> None: ...
    async def ping(self) -> bool: ...
