"""The exactly-once path in SQLite: inbox (accepted events), outbox (replies to deliver)."""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Sequence
from typing import Any

from nexflow.bus.events import InboundEvent, Outbound
from nexflow.storage import codec
from nexflow.storage.base import AuditRecord, InboxItem, NewMessage, OutboxItem, StorageError
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
                "SELECT id, payload, status, attempts FROM inbox WHERE status='pending' ORDER BY id"
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
                cur = c.execute(
                    "INSERT INTO outbox (inbox_id, channel, chat_id, payload, next_attempt_at, "
                    "created_at) VALUES (?,?,?,?,?,?)",
                    (inbox_id, reply.channel, reply.chat_id, codec.dump_outbound(reply), now, now),
                )
                c.execute("UPDATE inbox SET status='done', done_at=? WHERE id=?", (now, inbox_id))
                return int(cur.lastrowid or 0)

        return await self._run(q)

    async def enqueue(self, outbound: Outbound) -> int:
        def q(c: sqlite3.Connection) -> int:
            now = time.time()
            cur = c.execute(
                "INSERT INTO outbox (channel, chat_id, payload, next_attempt_at, created_at) "
                "VALUES (?,?,?,?,?)",
                (outbound.channel, outbound.chat_id, codec.dump_outbound(outbound), now, now),
            )
            return int(cur.lastrowid or 0)

        return await self._run(q)

    async def due_outbox(self, now: float, limit: int) -> list[OutboxItem]:
        def q(c: sqlite3.Connection) -> list[OutboxItem]:
            rows = c.execute(
                # Due items, except those queued behind an earlier one to the same chat that
                # is waiting for a retry: per-chat order survives failures.
                f"SELECT {_OUTBOX_COLS} FROM outbox o "
                "WHERE status='pending' AND next_attempt_at<=? "
                "AND NOT EXISTS (SELECT 1 FROM outbox p WHERE p.status='pending' "
                "AND p.channel=o.channel AND p.chat_id=o.chat_id AND p.id<o.id "
                "AND p.next_attempt_at>?) ORDER BY id LIMIT ?",
                (now, now, limit),
            ).fetchall()
            return [_outbox_item(r) for r in rows]

        return await self._run(q)

    async def next_outbox_due(self) -> float | None:
        def q(c: sqlite3.Connection) -> float | None:
            # Only the head of each chat's queue counts: the rest wait behind it.
            row = c.execute(
                "SELECT MIN(o.next_attempt_at) FROM outbox o WHERE o.status='pending' "
                "AND NOT EXISTS (SELECT 1 FROM outbox p WHERE p.status='pending' "
                "AND p.channel=o.channel AND p.chat_id=o.chat_id AND p.id<o.id)"
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


_OUTBOX_COLS = "id, payload, attempts, inbox_id, status, last_error"


def fetch_inbox(c: sqlite3.Connection, inbox_id: int) -> InboxItem | None:
    r = c.execute(
        "SELECT id, payload, status, attempts FROM inbox WHERE id=?", (inbox_id,)
    ).fetchone()
    return InboxItem(r[0], codec.load_event(r[1]), r[2], r[3]) if r else None


def _outbox_item(row: tuple[Any, ...]) -> OutboxItem:
    return OutboxItem(row[0], codec.load_outbound(row[1]), row[2], row[3], row[4], row[5])
