"""The exactly-once path in SQLite: inbox (accepted events), outbox (replies to deliver)."""

from __future__ import annotations

import json
import sqlite3
import time
from collections.abc import Collection, Sequence
from typing import Any

from nexflow.bus.events import InboundEvent, Outbound
from nexflow.storage import codec
from nexflow.storage.base import AuditRecord, InboxItem, NewMessage, OutboxItem, StorageError
from nexflow.storage.parking import OpenTurn, SessionOutboxRow, TurnMessage
from nexflow.storage.sqlite_conn import SQLiteConnection, _insert_audit, _tx


class SQLiteQueues(SQLiteConnection):
    """Inbox and outbox operations of :class:`~nexflow.storage.sqlite.SQLiteStorage`."""

    async def accept(self, event: InboundEvent) -> tuple[int, bool]:
        if event.session_id is None:
            raise StorageError("an event must have a session before it is accepted")

        def q(c: sqlite3.Connection) -> tuple[int, bool]:
            cur = c.execute(
                "INSERT OR IGNORE INTO inbox (dedup_key, session_id, payload, created_at) "
                "VALUES (?,?,?,?)",
                (event.dedup_key, event.session_id, codec.dump_event(event), time.time()),
            )
            if cur.rowcount:
                return int(cur.lastrowid or 0), False
            row = c.execute("SELECT id FROM inbox WHERE dedup_key=?", (event.dedup_key,)).fetchone()
            return int(row[0]), True

        return await self._run(q)

    async def pending_inbox(self) -> list[InboxItem]:
        def q(c: sqlite3.Connection) -> list[InboxItem]:
            rows = c.execute(
                # running: a run was interrupted (a crash); it runs again, counting attempts
                "SELECT id, payload, status, attempts FROM inbox "
                "WHERE status IN ('pending','running') ORDER BY id"
            ).fetchall()
            return [InboxItem(r[0], codec.load_event(r[1]), r[2], r[3]) for r in rows]

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
    ) -> int:
        def q(c: sqlite3.Connection) -> int:
            now = time.time()
            with _tx(c):
                row = c.execute("SELECT status FROM inbox WHERE id=?", (inbox_id,)).fetchone()
                if row is None:
                    raise StorageError(f"no inbox item {inbox_id}")
                existing = c.execute(
                    "SELECT id FROM outbox WHERE inbox_id=?", (inbox_id,)
                ).fetchone()
                if row[0] == "done" and existing:
                    return int(existing[0])
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
        def q(c: sqlite3.Connection) -> list[OutboxItem]:
            rows = c.execute(
                # Due items, except those queued behind an earlier one to the same chat (or
                # session) that waits for a retry, or to the same session that is parked:
                # per-chat order survives failures, and a parked session holds back only
                # itself.
                f"SELECT {_OUTBOX_COLS} FROM outbox o "
                "WHERE status='pending' AND next_attempt_at<=? "
                f"AND NOT EXISTS (SELECT 1 FROM outbox p WHERE {_AHEAD} "
                "AND (p.status='parked' OR p.next_attempt_at>?)) ORDER BY id LIMIT ?",
                (now, now, limit),
            ).fetchall()
            return [_outbox_item(r) for r in rows]

        return await self._run(q)

    async def next_outbox_due(self) -> float | None:
        def q(c: sqlite3.Connection) -> float | None:
            # Only the head of each chat's queue counts: the rest wait behind it (parked
            # items are not due, and hold back the rest of their session).
            row = c.execute(
                "SELECT MIN(o.next_attempt_at) FROM outbox o WHERE o.status='pending' "
                f"AND NOT EXISTS (SELECT 1 FROM outbox p WHERE {_AHEAD})"
            ).fetchone()
            return float(row[0]) if row and row[0] is not None else None

        return await self._run(q)

    async def get_outbox(self, outbox_id: int) -> OutboxItem | None:
        def q(c: sqlite3.Connection) -> OutboxItem | None:
            r = c.execute(f"SELECT {_OUTBOX_COLS} FROM outbox WHERE id=?", (outbox_id,)).fetchone()
            return _outbox_item(r) if r else None

        return await self._run(q)

    async def outbox_for_inbox(self, inbox_id: int) -> OutboxItem | None:
        def q(c: sqlite3.Connection) -> OutboxItem | None:
            r = c.execute(
                f"SELECT {_OUTBOX_COLS} FROM outbox WHERE inbox_id=?", (inbox_id,)
            ).fetchone()
            return _outbox_item(r) if r else None

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
        await self._exec(
            # A parked row must know its session, or no tab could ever un-park it (rows
            # inserted without insert_outbox lack the column).
            "UPDATE outbox SET status='parked', "
            "session_id=COALESCE(session_id, json_extract(payload, '$.item.session_id')) "
            "WHERE id=? AND status='pending'",
            (outbox_id,),
        )

    async def unpark_session(self, session_id: str) -> int:
        def q(c: sqlite3.Connection) -> int:
            cur = c.execute(
                "UPDATE outbox SET status='pending', next_attempt_at=? "
                "WHERE session_id=? AND status='parked'",
                (time.time(), session_id),
            )
            return cur.rowcount

        return await self._run(q)

    # -- the session timeline (nexflow.storage.parking.TimelineStore) -------------------

    async def turn_messages(self, session_id: str, limit: int) -> list[TurnMessage]:
        def q(c: sqlite3.Connection) -> list[TurnMessage]:
            rows = c.execute(
                "SELECT m.id, m.inbox_id, m.role, m.content, m.created_at, i.created_at, "
                "m.tool_calls, m.tool_call_id, m.name FROM messages m "
                "LEFT JOIN inbox i ON i.id = m.inbox_id "
                "WHERE m.session_id=? ORDER BY m.id DESC LIMIT ?",
                (session_id, limit),
            ).fetchall()
            return [
                TurnMessage(
                    id=r[0],
                    inbox_id=r[1],
                    role=r[2],
                    content=r[3],
                    created_at=r[4],
                    turn_at=r[5],
                    tool_calls=json.loads(r[6]) if r[6] else None,
                    tool_call_id=r[7],
                    name=r[8],
                )
                for r in reversed(rows)
            ]

        return await self._run(q)

    async def session_outbox(
        self, session_id: str, since: float, limit: int
    ) -> list[SessionOutboxRow]:
        def q(c: sqlite3.Connection) -> list[SessionOutboxRow]:
            rows = c.execute(
                "SELECT id, inbox_id, payload, status, created_at FROM outbox "
                "WHERE session_id=? AND created_at>=? ORDER BY id DESC LIMIT ?",
                (session_id, since, limit),
            ).fetchall()
            return [
                SessionOutboxRow(r[0], r[1], codec.load_outbound(r[2]), r[3], r[4])
                for r in reversed(rows)
            ]

        return await self._run(q)

    async def open_turns(self, session_id: str, limit: int) -> list[OpenTurn]:
        marks = ",".join("?" * len(OPEN_TURN_STATUSES))

        def q(c: sqlite3.Connection) -> list[OpenTurn]:
            rows = c.execute(
                "SELECT id, payload, status, created_at FROM inbox "
                f"WHERE status IN ({marks}) AND session_id=? ORDER BY id DESC LIMIT ?",
                (*OPEN_TURN_STATUSES, session_id, limit),
            ).fetchall()
            return [
                OpenTurn(r[0], codec.load_event(r[1]).message, r[2], r[3]) for r in reversed(rows)
            ]

        return await self._run(q)

    async def approval_status(self, ids: Collection[str]) -> dict[str, str]:
        wanted = sorted(set(ids))
        if not wanted:
            return {}
        marks = ",".join("?" * len(wanted))

        def q(c: sqlite3.Connection) -> dict[str, str]:
            found: dict[str, str] = {}
            # Requests asked before approvals were stored: their last audited outcome.
            for cid, outcome in c.execute(
                "SELECT json_extract(data, '$.id'), outcome FROM audit "
                f"WHERE kind='confirmation' AND json_extract(data, '$.id') IN ({marks}) "
                "ORDER BY id",
                wanted,
            ):
                found[str(cid)] = "pending" if outcome == "requested" else str(outcome)
            try:
                rows = c.execute(
                    f"SELECT id, status FROM approvals WHERE id IN ({marks})", wanted
                ).fetchall()
            except sqlite3.OperationalError as exc:  # an older schema: no approvals table
                if "no such table" not in str(exc):
                    raise
                rows = []
            for cid, status in rows:
                # 'used': the answer was spent by the turn; the audit says which answer.
                if status != "used" or found.get(cid) not in ("approved", "declined"):
                    found[str(cid)] = str(status)
            return found

        return await self._run(q)


_OUTBOX_COLS = "id, payload, attempts, inbox_id, status, last_error"
# An earlier item ``p`` in ``o``'s queue: same channel and the same chat or session, still
# to be delivered. A parked item is in the queue of its own session only.
_AHEAD = (
    "p.id<o.id AND p.channel=o.channel AND ("
    "(p.status='pending' AND (p.chat_id=o.chat_id OR p.session_id=o.session_id)) "
    "OR (p.status='parked' AND p.session_id=o.session_id))"
)
# Inbox statuses of a turn without a reply yet (see sqlite_turns).
OPEN_TURN_STATUSES = ("pending", "running", "awaiting", "dead")


def insert_outbox(
    c: sqlite3.Connection,
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
        "created_at, status, delivered_at) VALUES (?,?,?,?,?,?,?,?,?)",
        (
            inbox_id, out.channel, out.chat_id, out.session_id, codec.dump_outbound(out), now,
            now, "delivered" if delivered else "pending", now if delivered else None,
        ),
    )  # fmt: skip
    return int(cur.lastrowid or 0)


def fetch_inbox(c: sqlite3.Connection, inbox_id: int) -> InboxItem | None:
    r = c.execute(
        "SELECT id, payload, status, attempts FROM inbox WHERE id=?", (inbox_id,)
    ).fetchone()
    return InboxItem(r[0], codec.load_event(r[1]), r[2], r[3]) if r else None


def _outbox_item(row: tuple[Any, ...]) -> OutboxItem:
    return OutboxItem(row[0], codec.load_outbound(row[1]), row[2], row[3], row[4], row[5])
