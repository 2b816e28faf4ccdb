"""SQLite implementation of :class:`~nexflow.storage.base.Storage`.

One connection in WAL mode, used from one worker thread, so the event loop never
blocks on disk and writes are serialised. ``synchronous=NORMAL`` keeps every
committed transaction across a process crash (SIGKILL); only a power loss can
drop the last few.
"""

from __future__ import annotations

import asyncio
import json
import sqlite3
import time
import uuid
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, TypeVar

from nexflow.bus.events import InboundEvent, Outbound
from nexflow.storage import codec
from nexflow.storage.base import (
    AuditRecord,
    InboxItem,
    MessageRecord,
    NewMessage,
    OutboxItem,
    SessionRecord,
    StorageError,
    TaskRecord,
)
from nexflow.storage.migrations import migrate

T = TypeVar("T")


class SQLiteStorage:
    """The default storage: a single SQLite file."""

    def __init__(self, path: Path, busy_timeout_ms: int = 5_000) -> None:
        self._path = path
        self._busy_timeout_ms = busy_timeout_ms
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="nexflow-sqlite")
        self._conn: sqlite3.Connection | None = None
        self.schema_version = 0

    # -- plumbing -----------------------------------------------------------------

    async def _run(self, fn: Callable[[sqlite3.Connection], T]) -> T:
        conn = self._conn
        if conn is None:
            raise StorageError("storage is not open")

        def call() -> T:
            try:
                return fn(conn)
            except sqlite3.Error as exc:
                if conn.in_transaction:
                    conn.rollback()
                raise StorageError(f"database error: {exc}") from exc

        return await asyncio.get_running_loop().run_in_executor(self._executor, call)

    async def open(self) -> None:
        def connect() -> sqlite3.Connection:
            self._path.parent.mkdir(parents=True, exist_ok=True)
            conn = sqlite3.connect(self._path, isolation_level=None, check_same_thread=False)
            conn.execute("PRAGMA journal_mode=WAL")
            conn.execute("PRAGMA synchronous=NORMAL")
            conn.execute("PRAGMA foreign_keys=ON")
            conn.execute(f"PRAGMA busy_timeout={int(self._busy_timeout_ms)}")
            self.schema_version = migrate(conn)
            return conn

        try:
            self._conn = await asyncio.get_running_loop().run_in_executor(self._executor, connect)
        except sqlite3.Error as exc:
            raise StorageError(f"cannot open database {self._path}: {exc}") from exc

    async def close(self) -> None:
        conn, self._conn = self._conn, None
        if conn is not None:
            await asyncio.get_running_loop().run_in_executor(self._executor, conn.close)
        self._executor.shutdown(wait=True)

    async def ping(self) -> bool:
        try:
            return await self._run(lambda c: c.execute("SELECT 1").fetchone() == (1,))
        except StorageError:
            return False

    # -- identities ---------------------------------------------------------------

    async def find_user(self, channel: str, external_id: str) -> tuple[str, str] | None:
        def q(c: sqlite3.Connection) -> tuple[str, str] | None:
            row = c.execute(
                "SELECT u.id, u.role FROM identities i JOIN users u ON u.id = i.user_id "
                "WHERE i.channel=? AND i.external_id=?",
                (channel, external_id),
            ).fetchone()
            return (str(row[0]), str(row[1])) if row else None

        return await self._run(q)

    async def create_user(self, name: str, role: str, channel: str, external_id: str) -> str:
        def q(c: sqlite3.Connection) -> str:
            now = time.time()
            with _tx(c):
                row = c.execute(
                    "SELECT user_id FROM identities WHERE channel=? AND external_id=?",
                    (channel, external_id),
                ).fetchone()
                if row:
                    return str(row[0])
                user_id = uuid.uuid4().hex
                c.execute(
                    "INSERT INTO users (id, name, role, created_at) VALUES (?,?,?,?)",
                    (user_id, name, role, now),
                )
                c.execute(
                    "INSERT INTO identities VALUES (?,?,?,?)", (channel, external_id, user_id, now)
                )
                return user_id

        return await self._run(q)

    # -- sessions -----------------------------------------------------------------

    async def ensure_session(
        self, session_id: str | None, user_id: str, channel: str, chat_id: str
    ) -> SessionRecord:
        def q(c: sqlite3.Connection) -> SessionRecord:
            sid = session_id or uuid.uuid4().hex
            now = time.time()
            c.execute(
                "INSERT OR IGNORE INTO sessions VALUES (?,?,?,?,?,?,?)",
                (sid, user_id, channel, chat_id, "", now, now),
            )
            row = c.execute(f"SELECT {_SESSION_COLS} FROM sessions WHERE id=?", (sid,)).fetchone()
            return SessionRecord(*row)

        return await self._run(q)

    async def chat_session(self, user_id: str, channel: str, chat_id: str) -> SessionRecord:
        def q(c: sqlite3.Connection) -> SessionRecord:
            row = c.execute(
                f"SELECT {_SESSION_COLS} FROM sessions WHERE user_id=? AND channel=? AND chat_id=? "
                "ORDER BY created_at DESC LIMIT 1",
                (user_id, channel, chat_id),
            ).fetchone()
            if row:
                return SessionRecord(*row)
            now = time.time()
            record = SessionRecord(uuid.uuid4().hex, user_id, channel, chat_id, "", now, now)
            c.execute("INSERT INTO sessions VALUES (?,?,?,?,?,?,?)", _astuple(record))
            return record

        return await self._run(q)

    async def get_session(self, session_id: str) -> SessionRecord | None:
        def q(c: sqlite3.Connection) -> SessionRecord | None:
            row = c.execute(
                f"SELECT {_SESSION_COLS} FROM sessions WHERE id=?", (session_id,)
            ).fetchone()
            return SessionRecord(*row) if row else None

        return await self._run(q)

    async def list_sessions(self, user_id: str | None, limit: int) -> list[SessionRecord]:
        def q(c: sqlite3.Connection) -> list[SessionRecord]:
            where, args = ("WHERE user_id=?", (user_id,)) if user_id else ("", ())
            rows = c.execute(
                f"SELECT {_SESSION_COLS} FROM sessions {where} ORDER BY updated_at DESC LIMIT ?",
                (*args, limit),
            ).fetchall()
            return [SessionRecord(*r) for r in rows]

        return await self._run(q)

    async def history(self, session_id: str, limit: int) -> list[MessageRecord]:
        def q(c: sqlite3.Connection) -> list[MessageRecord]:
            rows = c.execute(
                "SELECT id, session_id, role, content, created_at, tool_calls, tool_call_id, name "
                "FROM messages WHERE session_id=? ORDER BY id DESC LIMIT ?",
                (session_id, limit),
            ).fetchall()
            return [
                MessageRecord(r[0], r[1], r[2], r[3], r[4], json.loads(r[5]) if r[5] else None, r[6], r[7])
                for r in reversed(rows)
            ]

        return await self._run(q)

    # -- inbox / outbox -----------------------------------------------------------

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
        def q(c: sqlite3.Connection) -> InboxItem | None:
            r = c.execute(
                "SELECT id, payload, status, attempts FROM inbox WHERE id=?", (inbox_id,)
            ).fetchone()
            return InboxItem(r[0], codec.load_event(r[1]), r[2], r[3]) if r else None

        return await self._run(q)

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
                existing = c.execute("SELECT id FROM outbox WHERE inbox_id=?", (inbox_id,)).fetchone()
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
                    c.execute("UPDATE sessions SET updated_at=? WHERE id=?", (now, reply.session_id))
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
                f"SELECT {_OUTBOX_COLS} FROM outbox o WHERE status='pending' AND next_attempt_at<=? "
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

    async def _exec(self, sql: str, args: tuple[Any, ...]) -> None:
        await self._run(lambda c: c.execute(sql, args))

    # -- audit and tasks ----------------------------------------------------------

    async def audit(self, records: Sequence[AuditRecord]) -> None:
        if records:
            await self._run(lambda c: _insert_audit(c, records, time.time()))

    async def audit_tail(self, limit: int, kind: str | None = None) -> list[dict[str, Any]]:
        def q(c: sqlite3.Connection) -> list[dict[str, Any]]:
            where, args = ("WHERE kind=?", (kind,)) if kind else ("", ())
            rows = c.execute(
                "SELECT id, ts, kind, name, outcome, user_id, session_id, data FROM audit "
                f"{where} ORDER BY id DESC LIMIT ?",
                (*args, limit),
            ).fetchall()
            keys = ("id", "ts", "kind", "name", "outcome", "user_id", "session_id")
            return [{**dict(zip(keys, r[:7], strict=True)), "data": json.loads(r[7])} for r in rows]

        return await self._run(q)

    async def create_task(self, kind: str, payload: dict[str, Any]) -> TaskRecord:
        task = TaskRecord(uuid.uuid4().hex, kind, "queued", payload, None, 0.0, time.time(), time.time())
        await self._exec(
            "INSERT INTO tasks (id, kind, status, payload, created_at, updated_at) VALUES (?,?,?,?,?,?)",
            (task.id, kind, task.status, codec.dump(payload), task.created_at, task.updated_at),
        )
        return task

    async def get_task(self, task_id: str) -> TaskRecord | None:
        def q(c: sqlite3.Connection) -> TaskRecord | None:
            r = c.execute(
                "SELECT id, kind, status, payload, result, progress, created_at, updated_at "
                "FROM tasks WHERE id=?",
                (task_id,),
            ).fetchone()
            if r is None:
                return None
            result = json.loads(r[4]) if r[4] else None
            return TaskRecord(r[0], r[1], r[2], json.loads(r[3]), result, r[5], r[6], r[7])

        return await self._run(q)

    async def update_task(
        self,
        task_id: str,
        *,
        status: str | None = None,
        progress: float | None = None,
        result: dict[str, Any] | None = None,
    ) -> None:
        await self._exec(
            "UPDATE tasks SET status=COALESCE(?, status), progress=COALESCE(?, progress), "
            "result=COALESCE(?, result), updated_at=? WHERE id=?",
            (status, progress, codec.dump(result) if result is not None else None, time.time(), task_id),
        )


_SESSION_COLS = "id, user_id, channel, chat_id, title, created_at, updated_at"
_OUTBOX_COLS = "id, payload, attempts, inbox_id, status, last_error"


def _astuple(record: SessionRecord) -> tuple[Any, ...]:
    return (record.id, record.user_id, record.channel, record.chat_id, record.title,
            record.created_at, record.updated_at)


def _outbox_item(row: tuple[Any, ...]) -> OutboxItem:
    return OutboxItem(row[0], codec.load_outbound(row[1]), row[2], row[3], row[4], row[5])


def _insert_audit(c: sqlite3.Connection, records: Sequence[AuditRecord], now: float) -> None:
    c.executemany(
        "INSERT INTO audit (ts, kind, name, outcome, user_id, session_id, data) VALUES (?,?,?,?,?,?,?)",
        [(now, r.kind, r.name, r.outcome, r.user_id, r.session_id, codec.dump(r.data)) for r in records],
    )


class _tx:  # noqa: N801 - used like a function: ``with _tx(conn):``
    """BEGIN IMMEDIATE … COMMIT, or ROLLBACK on error (the connection is in autocommit mode)."""

    def __init__(self, conn: sqlite3.Connection) -> None:
        self._conn = conn

    def __enter__(self) -> None:
        self._conn.execute("BEGIN IMMEDIATE")

    def __exit__(self, exc_type: object, *_: object) -> None:
        self._conn.execute("ROLLBACK" if exc_type else "COMMIT")
