"""Durable turns (SQLite and Postgres): runs counted, parked turns, approvals, dead letters.

The inbox row is the turn. Its ``status`` is the state machine: ``pending`` (accepted, or
answered and ready to resume) → ``running`` (a worker has it; ``attempts`` counts these
starts) → ``awaiting`` (parked on an approval; the checkpoint is in ``turns``) → … →
``done`` (the reply is in the outbox) or ``dead`` (``attempts`` past ``bus.max_attempts``:
a dead letter, listed and retried only on purpose). Every transition is one transaction;
a run is claimed with the inbox row locked (``SKIP LOCKED`` on Postgres, so two replicas
never start the same run at once).

Between replicas a session's turns run under its lease (:mod:`nexflow.gateway.replicas`):
every transition a run ends with (``park_turn``, ``fail_turn``, ``bury_turn``, and
``complete`` in :mod:`~nexflow.storage.repo_queue`) takes the run's
:class:`~nexflow.storage.repo_leases.Fence` and is refused with
:class:`~nexflow.storage.repo_leases.FenceLost` once another replica took the session over,
so a replica that stalled past its lease cannot commit over the new holder's work.
"""

from __future__ import annotations

import time
from collections.abc import Sequence

from nexflow.bus.events import Outbound
from nexflow.storage import codec
from nexflow.storage.base import (
    ApprovalAnswer,
    ApprovalRecord,
    AuditRecord,
    DeadLetter,
    InboxItem,
    SessionRecord,
    StorageError,
    TurnStart,
)
from nexflow.storage.connection import (
    APPROVAL_COLS,
    APPROVAL_FIELDS,
    SQLConnection,
    _insert_audit,
    _tx,
    approval_row,
    locked_approval,
    select_history,
)
from nexflow.storage.dialect import for_update, json_text, skip_locked
from nexflow.storage.engine import Conn, Row
from nexflow.storage.repo_leases import Fence, check_fence
from nexflow.storage.repo_queue import fetch_inbox, insert_outbox

_SESSION_FIELDS = ("id", "user_id", "channel", "chat_id", "title", "created_at", "updated_at")
_SESSION_COLS = ", ".join(_SESSION_FIELDS)


def session_row(row: Row) -> SessionRecord:
    """A :class:`SessionRecord` from a row with the columns of ``_SESSION_COLS``."""
    return SessionRecord(**{k: row[k] for k in _SESSION_FIELDS})


def _enqueue(c: Conn, out: Outbound, now: float) -> int:
    return insert_outbox(c, out, now)


class TurnRepo(SQLConnection):
    """Turn, approval and dead-letter operations of the SQLite storage."""

    # -- running ----------------------------------------------------------------------

    async def begin_turn(
        self, inbox_id: int, history_limit: int, max_attempts: int, *, fence: Fence | None = None
    ) -> TurnStart | None:
        """Start a run of a ``pending`` (or interrupted ``running``) turn, in one round trip:
        count the attempt, and load its session, history, checkpoint and the user's
        answers. Past ``max_attempts`` the turn becomes a dead letter instead
        (``TurnStart.dead``). None: nothing to run (done, dead, parked or gone)."""

        def q(c: Conn) -> TurnStart | None:
            now = time.time()
            with _tx(c):
                item = fetch_inbox(c, inbox_id, lock=skip_locked(c.dialect))
                if item is None or item.status not in ("pending", "running"):
                    return None
                check_fence(c, fence)
                session_id = item.event.session_id
                row = (
                    c.execute(
                        f"SELECT {_SESSION_COLS} FROM sessions WHERE id=?", (session_id,)
                    ).fetchone()
                    if session_id
                    else None
                )
                if row is None:
                    return None
                attempts = item.attempts + 1
                dead = attempts > max_attempts
                c.execute(
                    "UPDATE inbox SET status=?, attempts=?, updated_at=? WHERE id=?",
                    ("dead" if dead else "running", attempts, now, inbox_id),
                )
            session = session_row(row)
            item = InboxItem(item.id, item.event, "dead" if dead else "running", attempts)
            if dead:
                return TurnStart(item, session, [], None, {}, dead=True)
            found = c.execute("SELECT state FROM turns WHERE inbox_id=?", (inbox_id,)).fetchone()
            state = str(found["state"]) if found is not None else None
            decisions: dict[str, bool] = {}
            if state is not None:
                for r in c.execute(
                    "SELECT call_key, status FROM approvals WHERE inbox_id=? "
                    "AND status IN ('approved','declined')",
                    (inbox_id,),
                ).fetchall():
                    decisions[str(r["call_key"])] = r["status"] == "approved"
            history = select_history(c, session.id, history_limit) if state is None else []
            return TurnStart(item, session, history, state, decisions)

        return await self._run(q)

    async def park_turn(
        self,
        inbox_id: int,
        checkpoint: str,
        approval: ApprovalRecord,
        ask: Outbound,
        audit: Sequence[AuditRecord] = (),
        *,
        fence: Fence | None = None,
    ) -> int:
        """Store the turn's checkpoint, its new approval request and the request's message
        (through the outbox) in one transaction; the turn is ``awaiting`` and its run count
        starts again. Returns the outbox id of the request."""

        def q(c: Conn) -> int:
            now = time.time()
            with _tx(c):
                check_fence(c, fence)
                c.execute(
                    "INSERT INTO turns (inbox_id, session_id, user_id, state, updated_at) "
                    "VALUES (?,?,?,?,?) ON CONFLICT(inbox_id) DO UPDATE SET state=excluded.state, "
                    "updated_at=excluded.updated_at",
                    (inbox_id, approval.session_id or "", approval.user_id, checkpoint, now),
                )
                # Answers already used by this run: each works once.
                c.execute(
                    "UPDATE approvals SET status='used' WHERE inbox_id=? "
                    "AND status IN ('approved','declined')",
                    (inbox_id,),
                )
                c.execute(
                    f"INSERT INTO approvals ({APPROVAL_COLS}) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?)",
                    (
                        approval.id, inbox_id, approval.user_id, approval.channel,
                        approval.chat_id, approval.session_id, approval.title, approval.detail,
                        approval.call_key, "pending", now, approval.expires_at, None,
                    ),
                )  # fmt: skip
                c.execute(
                    "UPDATE inbox SET status='awaiting', attempts=0, updated_at=? WHERE id=?",
                    (now, inbox_id),
                )
                _insert_audit(c, audit, now)
                return _enqueue(c, ask, now)

        return await self._run(q)

    async def fail_turn(
        self, inbox_id: int, error: str, max_attempts: int, *, fence: Fence | None = None
    ) -> str:
        """A run raised: back to ``pending`` for another run, or ``dead`` when it has had
        ``max_attempts``. Returns the new status."""

        def q(c: Conn) -> str:
            with _tx(c):
                row = c.execute(
                    f"SELECT attempts FROM inbox WHERE id=?{for_update(c.dialect)}", (inbox_id,)
                ).fetchone()
                if row is None:
                    raise StorageError(f"no inbox item {inbox_id}")
                check_fence(c, fence)
                status = "dead" if int(row["attempts"]) >= max_attempts else "pending"
                c.execute(
                    "UPDATE inbox SET status=?, last_error=?, updated_at=? WHERE id=? "
                    "AND status IN ('running','pending')",
                    (status, error[:2000], time.time(), inbox_id),
                )
                return status

        return await self._run(q)

    async def bury_turn(
        self,
        inbox_id: int,
        error: str,
        notice: Outbound | None,
        audit: Sequence[AuditRecord],
        *,
        fence: Fence | None = None,
    ) -> None:
        """Mark a turn dead and queue the notice telling its sender, in one transaction."""

        def q(c: Conn) -> None:
            now = time.time()
            with _tx(c):
                check_fence(c, fence)
                c.execute(
                    "UPDATE inbox SET status='dead', last_error=COALESCE(?, last_error), "
                    "updated_at=? WHERE id=?",
                    (error[:2000] or None, now, inbox_id),
                )
                _insert_audit(c, audit, now)
                if notice is not None:
                    _enqueue(c, notice, now)

        await self._run(q)

    async def turn_state(self, inbox_id: int) -> str | None:
        row = await self._run(
            lambda c: c.execute("SELECT state FROM turns WHERE inbox_id=?", (inbox_id,)).fetchone()
        )
        return str(row["state"]) if row else None

    # -- approvals --------------------------------------------------------------------

    async def answer_approval(
        self,
        approval_id: str,
        user_id: str,
        approve: bool,
        *,
        channel: str | None = None,
        chat_id: str | None = None,
        session_id: str | None = None,
    ) -> tuple[ApprovalAnswer, ApprovalRecord | None]:
        """Record the user's answer once. The approval must be pending, unexpired, the
        user's own and (when ``channel`` is given: a chat command) asked in that chat or
        session. Its parked turn becomes ``pending`` again, ready to resume."""

        def q(c: Conn) -> tuple[ApprovalAnswer, ApprovalRecord | None]:
            now = time.time()
            with _tx(c):
                a = locked_approval(c, approval_id)
                if a is None:
                    return "unknown", None
                if a.user_id != user_id:
                    return "not_yours", None
                if channel is not None and (
                    a.channel != channel
                    or (
                        a.chat_id != chat_id
                        and (a.session_id is None or a.session_id != session_id)
                    )
                ):
                    return "not_yours", None
                if a.status != "pending" or a.inbox_id is None:
                    return ("expired" if a.status == "expired" else "unknown"), a
                if a.expires_at <= now:
                    return "expired", a
                status = "approved" if approve else "declined"
                c.execute(
                    "UPDATE approvals SET status=?, decided_at=? WHERE id=?",
                    (status, now, approval_id),
                )
                c.execute(
                    "UPDATE inbox SET status='pending', updated_at=? WHERE id=? "
                    "AND status='awaiting'",
                    (now, a.inbox_id),
                )
                answer: ApprovalAnswer = "approved" if approve else "declined"
                return answer, a

        return await self._run(q)

    async def issue_approval(self, approval: ApprovalRecord) -> None:
        """A request answered by repeating the call with its id (the HTTP 409 flow)."""

        def q(c: Conn) -> None:
            c.execute(
                f"INSERT INTO approvals ({APPROVAL_COLS}) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?)",
                (
                    approval.id, None, approval.user_id, approval.channel, approval.chat_id,
                    approval.session_id, approval.title, approval.detail, approval.call_key,
                    "pending", time.time(), approval.expires_at, None,
                ),
            )  # fmt: skip

        await self._run(q)

    async def consume_approval(self, approval_id: str, user_id: str, call_key: str) -> bool:
        """True once for an unexpired issued request of this user for exactly this call."""

        def q(c: Conn) -> bool:
            now = time.time()
            cur = c.execute(
                "UPDATE approvals SET status='used', decided_at=? WHERE id=? AND user_id=? "
                "AND call_key=? AND status='pending' AND inbox_id IS NULL AND expires_at>?",
                (now, approval_id, user_id, call_key, now),
            )
            return cur.rowcount == 1

        return await self._run(q)

    async def approvals_for(
        self, user_id: str | None, status: str = "pending"
    ) -> list[ApprovalRecord]:
        def q(c: Conn) -> list[ApprovalRecord]:
            where, args = ("AND user_id=?", (user_id,)) if user_id is not None else ("", ())
            rows = c.execute(
                f"SELECT {APPROVAL_COLS} FROM approvals WHERE status=? AND expires_at>? "
                f"{where} ORDER BY created_at",
                (status, time.time(), *args),
            ).fetchall()
            return [approval_row(r) for r in rows]

        return await self._run(q)

    async def get_approval(self, approval_id: str) -> ApprovalRecord | None:
        def q(c: Conn) -> ApprovalRecord | None:
            row = c.execute(
                f"SELECT {APPROVAL_COLS} FROM approvals WHERE id=?", (approval_id,)
            ).fetchone()
            return approval_row(row) if row else None

        return await self._run(q)

    async def next_approval_expiry(self) -> float | None:
        def q(c: Conn) -> float | None:
            row = c.execute(
                "SELECT MIN(expires_at) AS due FROM approvals WHERE status='pending' "
                "AND inbox_id IS NOT NULL"
            ).fetchone()
            return float(row["due"]) if row and row["due"] is not None else None

        return await self._run(q)

    async def expired_turns(self, now: float) -> list[tuple[ApprovalRecord, InboxItem, str]]:
        """Parked turns whose approval has run out: the approval is marked ``expired`` and
        each is returned with its inbox item and checkpoint, for the runner to close."""

        def q(c: Conn) -> list[tuple[ApprovalRecord, InboxItem, str]]:
            out: list[tuple[ApprovalRecord, InboxItem, str]] = []
            with _tx(c):
                c.execute(
                    "UPDATE approvals SET status='expired', decided_at=? WHERE status='pending' "
                    "AND expires_at<=?",
                    (now, now),
                )
                rows = c.execute(
                    f"SELECT {', '.join('a.' + k for k in APPROVAL_FIELDS)}, "
                    "t.state FROM approvals a JOIN inbox i ON i.id=a.inbox_id "
                    "JOIN turns t ON t.inbox_id=a.inbox_id "
                    "WHERE a.status='expired' AND i.status='awaiting'"
                ).fetchall()
                for row in rows:
                    item = fetch_inbox(c, int(row["inbox_id"]))
                    if item is not None:
                        out.append((approval_row(row), item, str(row["state"])))
            return out

        return await self._run(q)

    # -- dead letters -----------------------------------------------------------------

    async def dead_letters(self, user_id: str | None, limit: int) -> list[DeadLetter]:
        def q(c: Conn) -> list[DeadLetter]:
            # The sender's user id is in the stored event: filtered here, not after a window.
            mine, args = (
                (f"AND {json_text(c.dialect, 'payload', '$.user_id')} = ?", (user_id,))
                if user_id is not None
                else ("", ())
            )
            rows = c.execute(
                "SELECT id, payload, attempts, last_error, updated_at FROM inbox "
                f"WHERE status='dead' {mine} ORDER BY id DESC LIMIT ?",
                (*args, limit),
            ).fetchall()
            return [
                DeadLetter(
                    inbox_id=int(r["id"]),
                    event=codec.load_event(r["payload"]),
                    attempts=int(r["attempts"]),
                    last_error=r["last_error"] or "",
                    updated_at=r["updated_at"] or 0.0,
                )
                for r in rows
            ]

        return await self._run(q)

    async def retry_dead(self, inbox_id: int) -> InboxItem | None:
        """A dead letter back to ``pending`` with its attempts reset; None if not dead."""

        def q(c: Conn) -> InboxItem | None:
            with _tx(c):
                cur = c.execute(
                    "UPDATE inbox SET status='pending', attempts=0, updated_at=? "
                    "WHERE id=? AND status='dead'",
                    (time.time(), inbox_id),
                )
                return fetch_inbox(c, inbox_id) if cur.rowcount else None

        return await self._run(q)
