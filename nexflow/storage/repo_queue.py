"""The exactly-once path: inbox (accepted events), outbox (replies to deliver), on SQLite
and Postgres alike (the queries take a :class:`~nexflow.storage.engine.Conn`).

Replicas (several gateways on one Postgres, docs/scale-out.md "Replicas"):

* **Outbox claims.** On Postgres :meth:`QueueRepo.claim_due_outbox` *claims* what it returns:
  in one transaction (claims serialised on an advisory lock, rows locked ``FOR UPDATE
  SKIP LOCKED``) it pushes each row's ``next_attempt_at`` forward by ``outbox_claim_s``,
  so another replica neither takes the row nor anything queued behind it in its chat.
  The claimer marks each row (delivered, retry, parked, failed) or gives back what it did
  not attempt (:meth:`QueueRepo.claim_outbox`); a replica that dies mid-delivery leaves
  its claim to expire and the row is delivered again, once. SQLite (one process) claims
  nothing: the query is the one it always was.
* **Session leases** (:mod:`nexflow.storage.repo_leases`): a turn's commit carries the
  lease's :class:`~nexflow.storage.repo_leases.Fence` and is refused once the session
  changed hands.
"""

from __future__ import annotations

import json
import sqlite3
import time
from collections.abc import Collection, Sequence

from nexflow.bus.events import InboundEvent, Outbound
from nexflow.storage import codec
from nexflow.storage.base import AuditRecord, InboxItem, NewMessage, OutboxItem, StorageError
from nexflow.storage.connection import _insert_audit, _tx, returned_id
from nexflow.storage.dialect import for_update, json_text
from nexflow.storage.engine import Conn, Row
from nexflow.storage.parking import OpenTurn, SessionOutboxRow, TurnMessage
from nexflow.storage.repo_leases import Fence, LeaseRepo, check_fence


class QueueRepo(LeaseRepo):
    """Inbox and outbox operations of :class:`~nexflow.storage.sql_storage.SQLStorage`."""

    # How long a replica's claim on due outbox rows keeps other replicas off them (longer
    # than a delivery takes, e.g. a web tab's acknowledgement); renewed for long lanes.
    outbox_claim_s: float = 30.0

    @property
    def claims_outbox(self) -> bool:
        """True when :meth:`due_outbox` claims rows (Postgres: replicas may share it)."""
        return self.dialect != "sqlite"

    async def accept(self, event: InboundEvent) -> tuple[int, bool]:
        if event.session_id is None:
            raise StorageError("an event must have a session before it is accepted")

        def q(c: Conn) -> tuple[int, bool]:
            inbox_id = returned_id(
                c.execute(
                    "INSERT INTO inbox (dedup_key, session_id, payload, created_at) "
                    "VALUES (?,?,?,?) ON CONFLICT(dedup_key) DO NOTHING RETURNING id",
                    (event.dedup_key, event.session_id, codec.dump_event(event), time.time()),
                )
            )
            if inbox_id is not None:
                return inbox_id, False
            row = c.execute("SELECT id FROM inbox WHERE dedup_key=?", (event.dedup_key,)).fetchone()
            return int(row["id"]), True

        return await self._run(q)

    async def pending_inbox(self) -> list[InboxItem]:
        def q(c: Conn) -> list[InboxItem]:
            rows = c.execute(
                # running: a run was interrupted (a crash); it runs again, counting attempts
                f"SELECT {_INBOX_COLS} FROM inbox WHERE status IN ('pending','running') ORDER BY id"
            ).fetchall()
            return [_inbox_item(r) for r in rows]

        return await self._run(q)

    async def get_inbox(self, inbox_id: int) -> InboxItem | None:
        return await self._run(lambda c: fetch_inbox(c, inbox_id))

    async def complete(
        self,
        inbox_id: int,
        messages: Sequence[NewMessage],
        reply: Outbound,
        audit: Sequence[AuditRecord] = (),
        *,
        delivered: bool = False,
        extra: Sequence[Outbound] = (),
        fence: Fence | None = None,
    ) -> int:
        def q(c: Conn) -> int:
            now = time.time()
            with _tx(c):
                # Locked on Postgres: a second replica completing the same turn waits,
                # then finds it done (as SQLite's single writer has it). The outbox is read
                # by a statement of its own: it must see what the first one committed.
                row = c.execute(
                    f"SELECT status FROM inbox WHERE id=?{for_update(c.dialect)}", (inbox_id,)
                ).fetchone()
                if row is None:
                    raise StorageError(f"no inbox item {inbox_id}")
                existing = c.execute(
                    "SELECT id FROM outbox WHERE inbox_id=?", (inbox_id,)
                ).fetchone()
                if row["status"] == "done" and existing:
                    return int(existing["id"])
                check_fence(c, fence)
                if reply.session_id:
                    c.executemany(
                        "INSERT INTO messages (session_id, inbox_id, role, content, tool_calls, "
                        "tool_call_id, name, created_at) VALUES (?,?,?,?,?,?,?,?)",
                        [
                            (
                                reply.session_id,
                                inbox_id,
                                m.role,
                                m.content,
                                codec.dump(m.tool_calls) if m.tool_calls else None,
                                m.tool_call_id,
                                m.name,
                                now,
                            )
                            for m in messages
                        ],
                    )
                    c.execute(
                        "UPDATE sessions SET updated_at=? WHERE id=?", (now, reply.session_id)
                    )
                _insert_audit(c, audit, now)
                outbox_id = insert_outbox(c, reply, now, inbox_id, delivered=delivered)
                for more in extra:
                    insert_outbox(c, more, now)
                c.execute("UPDATE inbox SET status='done', done_at=? WHERE id=?", (now, inbox_id))
                # A parked turn is over: its checkpoint goes, its answers have been used.
                c.execute("DELETE FROM turns WHERE inbox_id=?", (inbox_id,))
                c.execute(
                    "UPDATE approvals SET status='used' WHERE inbox_id=? "
                    "AND status IN ('approved','declined')",
                    (inbox_id,),
                )
                return outbox_id

        return await self._run(q)

    async def enqueue(self, outbound: Outbound) -> int:
        return await self._run(lambda c: insert_outbox(c, outbound, time.time()))

    async def due_outbox(self, now: float, limit: int) -> list[OutboxItem]:
        return await self._run(lambda c: _due(c, now, limit))

    async def claim_due_outbox(
        self, now: float, limit: int, claim_s: float | None = None
    ) -> list[OutboxItem]:
        """:meth:`due_outbox`, claimed for this replica (Postgres; on SQLite the same read):
        in one transaction the rows are locked and their ``next_attempt_at`` pushed
        ``claim_s`` (default ``outbox_claim_s``) forward, so no other replica takes them or
        anything behind them in their chat until this one marks them or the claim runs out."""
        window = self.outbox_claim_s if claim_s is None else claim_s

        def claim(c: Conn) -> list[OutboxItem]:
            with _tx(c):
                # One claim at a time: the next one sees this one's rows pushed forward,
                # so it takes nothing queued behind them either (chat order).
                c.execute("SELECT pg_advisory_xact_lock(hashtext('nexflow.outbox.claim'))")
                items = _due(c, now, limit, " FOR UPDATE OF o SKIP LOCKED")
                _set_due(c, [i.id for i in items], time.time() + window)
            return items

        if self.dialect == "sqlite":
            return await self.due_outbox(now, limit)
        return await self._run(claim)

    async def claim_outbox(self, outbox_ids: Sequence[int], until: float) -> None:
        """Move the claim on pending rows this replica holds to ``until``: later to keep
        a long lane's rows, now to give back rows it did not attempt. Nothing on SQLite."""
        if self.dialect == "sqlite" or not outbox_ids:
            return
        await self._run(lambda c: _set_due(c, list(outbox_ids), until))

    async def settle_reply(self, outbox_id: int) -> bool:
        """A reply its HTTP caller received from storage (the turn ran on another replica)
        is delivered, unless a delivery already ended it; True if this call marked it."""

        def q(c: Conn) -> bool:
            cur = c.execute(
                "UPDATE outbox SET status='delivered', delivered_at=? "
                "WHERE id=? AND status IN ('pending','parked')",
                (time.time(), outbox_id),
            )
            return cur.rowcount == 1

        return await self._run(q)

    async def next_outbox_due(self) -> float | None:
        def q(c: Conn) -> float | None:
            # Only the head of each chat's queue counts: the rest wait behind it (parked
            # items are not due, and hold back the rest of their session).
            row = c.execute(
                "SELECT MIN(o.next_attempt_at) AS due FROM outbox o WHERE o.status='pending' "
                f"AND NOT EXISTS (SELECT 1 FROM outbox p WHERE {_AHEAD})"
            ).fetchone()
            return float(row["due"]) if row and row["due"] is not None else None

        return await self._run(q)

    async def get_outbox(self, outbox_id: int) -> OutboxItem | None:
        def q(c: Conn) -> OutboxItem | None:
            r = c.execute(f"SELECT {_OUTBOX_COLS} FROM outbox WHERE id=?", (outbox_id,)).fetchone()
            return _outbox_item(r) if r else None

        return await self._run(q)

    async def outbox_for_inbox(self, inbox_id: int) -> OutboxItem | None:
        def q(c: Conn) -> OutboxItem | None:
            r = c.execute(
                f"SELECT {_OUTBOX_COLS} FROM outbox WHERE inbox_id=?", (inbox_id,)
            ).fetchone()
            return _outbox_item(r) if r else None

        return await self._run(q)

    async def reply_or_dead_letter(self, inbox_id: int) -> OutboxItem | InboxItem | None:
        """In one read: the turn's reply row when there is one, else the inbox item when
        the turn is a dead letter (its notice carries no ``inbox_id``), else None."""

        def q(c: Conn) -> OutboxItem | InboxItem | None:
            r = c.execute(
                "SELECT i.status AS i_status, i.attempts AS i_attempts, "
                "CASE WHEN i.status='dead' THEN i.payload END AS i_payload, "
                "o.id, o.payload, o.attempts, o.inbox_id, o.status, o.last_error "
                "FROM inbox i LEFT JOIN outbox o ON o.inbox_id=i.id WHERE i.id=?",
                (inbox_id,),
            ).fetchone()
            if r is None:
                return None
            if r["id"] is not None:
                return _outbox_item(r)
            if r["i_payload"] is None:
                return None
            return InboxItem(
                id=inbox_id,
                event=codec.load_event(r["i_payload"]),
                status=r["i_status"],
                attempts=int(r["i_attempts"]),
            )

        return await self._run(q)

    async def mark_delivered(self, outbox_id: int) -> None:
        await self._exec(
            "UPDATE outbox SET status='delivered', delivered_at=?, attempts=attempts+1 WHERE id=?",
            (time.time(), outbox_id),
        )

    async def mark_retry(self, outbox_id: int, error: str, next_attempt_at: float) -> None:
        await self._exec(
            "UPDATE outbox SET attempts=attempts+1, last_error=?, next_attempt_at=? WHERE id=?",
            (error[:1000], next_attempt_at, outbox_id),
        )

    async def mark_failed(self, outbox_id: int, error: str) -> None:
        await self._exec(
            "UPDATE outbox SET status='failed', attempts=attempts+1, last_error=? WHERE id=?",
            (error[:1000], outbox_id),
        )

    # -- parking (nexflow.storage.parking.OutboxParking) -------------------------------

    async def park_outbox(self, outbox_id: int) -> None:
        def q(c: Conn) -> None:
            # A parked row must know its session, or no tab could ever un-park it (rows
            # inserted without insert_outbox lack the column).
            session = json_text(c.dialect, "payload", "$.item.session_id")
            c.execute(
                f"UPDATE outbox SET status='parked', session_id=COALESCE(session_id, {session}) "
                "WHERE id=? AND status='pending'",
                (outbox_id,),
            )

        await self._run(q)

    async def unpark_session(self, session_id: str) -> int:
        def q(c: Conn) -> int:
            cur = c.execute(
                "UPDATE outbox SET status='pending', next_attempt_at=? "
                "WHERE session_id=? AND status='parked'",
                (time.time(), session_id),
            )
            return cur.rowcount

        return await self._run(q)

    # -- the session timeline (nexflow.storage.parking.TimelineStore) -------------------

    async def turn_messages(self, session_id: str, limit: int) -> list[TurnMessage]:
        def q(c: Conn) -> list[TurnMessage]:
            rows = c.execute(
                "SELECT m.id, m.inbox_id, m.role, m.content, m.created_at, "
                "i.created_at AS turn_at, m.tool_calls, m.tool_call_id, m.name FROM messages m "
                "LEFT JOIN inbox i ON i.id = m.inbox_id "
                "WHERE m.session_id=? ORDER BY m.id DESC LIMIT ?",
                (session_id, limit),
            ).fetchall()
            return [
                TurnMessage(
                    id=r["id"],
                    inbox_id=r["inbox_id"],
                    role=r["role"],
                    content=r["content"],
                    created_at=r["created_at"],
                    turn_at=r["turn_at"],
                    tool_calls=json.loads(r["tool_calls"]) if r["tool_calls"] else None,
                    tool_call_id=r["tool_call_id"],
                    name=r["name"],
                )
                for r in reversed(rows)
            ]

        return await self._run(q)

    async def session_outbox(
        self, session_id: str, since: float, limit: int
    ) -> list[SessionOutboxRow]:
        def q(c: Conn) -> list[SessionOutboxRow]:
            rows = c.execute(
                "SELECT id, inbox_id, payload, status, created_at FROM outbox "
                "WHERE session_id=? AND created_at>=? ORDER BY id DESC LIMIT ?",
                (session_id, since, limit),
            ).fetchall()
            return [
                SessionOutboxRow(
                    id=r["id"],
                    inbox_id=r["inbox_id"],
                    outbound=codec.load_outbound(r["payload"]),
                    status=r["status"],
                    created_at=r["created_at"],
                )
                for r in reversed(rows)
            ]

        return await self._run(q)

    async def open_turns(self, session_id: str, limit: int) -> list[OpenTurn]:
        marks = ",".join("?" * len(OPEN_TURN_STATUSES))

        def q(c: Conn) -> list[OpenTurn]:
            rows = c.execute(
                "SELECT id, payload, status, created_at FROM inbox "
                f"WHERE status IN ({marks}) AND session_id=? ORDER BY id DESC LIMIT ?",
                (*OPEN_TURN_STATUSES, session_id, limit),
            ).fetchall()
            return [
                OpenTurn(
                    inbox_id=r["id"],
                    message=codec.load_event(r["payload"]).message,
                    status=r["status"],
                    created_at=r["created_at"],
                )
                for r in reversed(rows)
            ]

        return await self._run(q)

    async def approval_status(self, ids: Collection[str]) -> dict[str, str]:
        wanted = sorted(set(ids))
        if not wanted:
            return {}
        marks = ",".join("?" * len(wanted))

        def q(c: Conn) -> dict[str, str]:
            found: dict[str, str] = {}
            # Requests asked before approvals were stored: their last audited outcome.
            audit_id = json_text(c.dialect, "data", "$.id")
            for r in c.execute(
                f"SELECT {audit_id} AS cid, outcome FROM audit "
                f"WHERE kind='confirmation' AND {audit_id} IN ({marks}) ORDER BY id",
                wanted,
            ).fetchall():
                outcome = str(r["outcome"])
                found[str(r["cid"])] = "pending" if outcome == "requested" else outcome
            try:
                rows = c.execute(
                    f"SELECT id, status FROM approvals WHERE id IN ({marks})", wanted
                ).fetchall()
            except Exception as exc:  # an older schema: no approvals table
                if not _missing_table(exc):
                    raise
                rows = []
            for r in rows:
                cid, status = str(r["id"]), str(r["status"])
                # 'used': the answer was spent by the turn; the audit says which answer.
                if status != "used" or found.get(cid) not in ("approved", "declined"):
                    found[cid] = status
            return found

        return await self._run(q)


_OUTBOX_COLS = "id, payload, attempts, inbox_id, status, last_error"
_INBOX_COLS = "id, payload, status, attempts"
# An earlier item ``p`` in ``o``'s queue: same channel and the same chat or session, still
# to be delivered. A parked item is in the queue of its own session only.
_AHEAD = (
    "p.id<o.id AND p.channel=o.channel AND ("
    "(p.status='pending' AND (p.chat_id=o.chat_id OR p.session_id=o.session_id)) "
    "OR (p.status='parked' AND p.session_id=o.session_id))"
)
# Inbox statuses of a turn without a reply yet (see repo_turns).
OPEN_TURN_STATUSES = ("pending", "running", "awaiting", "dead")


def insert_outbox(
    c: Conn,
    out: Outbound,
    now: float,
    inbox_id: int | None = None,
    *,
    delivered: bool = False,
) -> int:
    """Queue ``out`` (every insert into the outbox goes through here: it fills the
    session the item belongs to, which orders and parks it). ``delivered``: it already
    reached its reader another way (a turn's reply in the HTTP response that asked)."""
    cur = c.execute(
        "INSERT INTO outbox (inbox_id, channel, chat_id, session_id, payload, next_attempt_at, "
        "created_at, status, delivered_at) VALUES (?,?,?,?,?,?,?,?,?) RETURNING id",
        (
            inbox_id, out.channel, out.chat_id, out.session_id, codec.dump_outbound(out), now,
            now, "delivered" if delivered else "pending", now if delivered else None,
        ),
    )  # fmt: skip
    return returned_id(cur) or 0


def _due(c: Conn, now: float, limit: int, lock: str = "") -> list[OutboxItem]:
    rows = c.execute(
        # Due items, except those queued behind an earlier one to the same chat (or
        # session) that waits for a retry (or another replica's claim), or to the same
        # session that is parked: per-chat order survives failures, and a parked session
        # holds back only itself.
        f"SELECT {_OUTBOX_COLS} FROM outbox o "
        "WHERE status='pending' AND next_attempt_at<=? "
        f"AND NOT EXISTS (SELECT 1 FROM outbox p WHERE {_AHEAD} "
        f"AND (p.status='parked' OR p.next_attempt_at>?)) ORDER BY id LIMIT ?{lock}",
        (now, now, limit),
    ).fetchall()
    return [_outbox_item(r) for r in rows]


def _set_due(c: Conn, outbox_ids: list[int], when: float) -> None:
    if outbox_ids:
        marks = ",".join("?" * len(outbox_ids))
        c.execute(
            f"UPDATE outbox SET next_attempt_at=? WHERE id IN ({marks}) AND status='pending'",
            (when, *outbox_ids),
        )


def _missing_table(exc: BaseException) -> bool:
    """SQLite's "no such table", or Postgres's undefined_table (SQLSTATE 42P01). Outside
    a transaction the Postgres connection stays usable after it."""
    if isinstance(exc, sqlite3.OperationalError):
        return "no such table" in str(exc)
    return getattr(exc, "sqlstate", None) == "42P01"


def fetch_inbox(c: Conn, inbox_id: int, *, lock: str = "") -> InboxItem | None:
    """The inbox row ``inbox_id``; ``lock`` is a row-lock clause to append (see
    :func:`nexflow.storage.dialect.skip_locked`)."""
    r = c.execute(f"SELECT {_INBOX_COLS} FROM inbox WHERE id=?{lock}", (inbox_id,)).fetchone()
    return _inbox_item(r) if r else None


def _inbox_item(r: Row) -> InboxItem:
    return InboxItem(
        id=int(r["id"]),
        event=codec.load_event(r["payload"]),
        status=r["status"],
        attempts=int(r["attempts"]),
    )


def _outbox_item(r: Row) -> OutboxItem:
    return OutboxItem(
        id=int(r["id"]),
        outbound=codec.load_outbound(r["payload"]),
        attempts=int(r["attempts"]),
        inbox_id=r["inbox_id"],
        status=r["status"],
        last_error=r["last_error"],
    )
