"""The SQLite connection every SQLite repository shares.

One connection in WAL mode, used from one worker thread, so the event loop never
blocks on disk and writes are serialised. ``synchronous=NORMAL`` keeps every
committed transaction across a process crash (SIGKILL); only a power loss can
drop the last few.
"""

from __future__ import annotations

import asyncio
import json
import sqlite3
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, TypeVar

from nexflow.storage import codec
from nexflow.storage.base import AuditRecord, MessageRecord, StorageError
from nexflow.storage.migrations import migrate

T = TypeVar("T")


class SQLiteConnection:
    """Opens, migrates and serialises access to one SQLite file."""

    def __init__(self, path: Path, busy_timeout_ms: int = 5_000) -> None:
        self._path = path
        self._busy_timeout_ms = busy_timeout_ms
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="nexflow-sqlite")
        self._conn: sqlite3.Connection | None = None
        self.schema_version = 0

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

    async def _exec(self, sql: str, args: tuple[Any, ...]) -> None:
        await self._run(lambda c: c.execute(sql, args))


def _insert_audit(c: sqlite3.Connection, records: Sequence[AuditRecord], now: float) -> None:
    c.executemany(
        "INSERT INTO audit (ts, kind, name, outcome, user_id, session_id, data) "
        "VALUES (?,?,?,?,?,?,?)",
        [
            (now, r.kind, r.name, r.outcome, r.user_id, r.session_id, codec.dump(r.data))
            for r in records
        ],
    )


class _tx:
    """BEGIN IMMEDIATE … COMMIT, or ROLLBACK on error (the connection is in autocommit mode)."""

    def __init__(self, conn: sqlite3.Connection) -> None:
        self._conn = conn

    def __enter__(self) -> None:
        self._conn.execute("BEGIN IMMEDIATE")

    def __exit__(self, exc_type: object, *_: object) -> None:
        self._conn.execute("ROLLBACK" if exc_type else "COMMIT")


def select_history(c: sqlite3.Connection, session_id: str, limit: int) -> list[MessageRecord]:
    rows = c.execute(
        "SELECT id, session_id, role, content, created_at, tool_calls, tool_call_id, name "
        "FROM messages WHERE session_id=? ORDER BY id DESC LIMIT ?",
        (session_id, limit),
    ).fetchall()
    return [message_row(r) for r in reversed(rows)]


def message_row(r: Sequence[Any]) -> MessageRecord:
    tool_calls = json.loads(r[5]) if r[5] else None
    return MessageRecord(r[0], r[1], r[2], r[3], r[4], tool_calls, r[6], r[7])
