"""The connection every repository shares: :class:`SQLConnection` over an engine
(:mod:`nexflow.storage.engine`), and the query helpers more than one repository uses.

On SQLite, one connection in WAL mode used from one worker thread, so the event loop
never blocks on disk and writes are serialised; ``synchronous=NORMAL`` keeps every
committed transaction across a process crash (SIGKILL). On Postgres, psycopg on the
engine's worker thread. A repository's transaction is one function on one connection.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from nexflow.storage import codec
from nexflow.storage.base import ApprovalRecord, AuditRecord, MessageRecord, StorageError
from nexflow.storage.dialect import begin, for_update
from nexflow.storage.engine import Conn, Cursor, Dialect, Engine, Row, SQLiteEngine


class SQLConnection:
    """The engine every repository shares (see :mod:`nexflow.storage.engine`): a
    SQLite file given a path, or any engine (Postgres) given one."""

    def __init__(self, target: Path | Engine, busy_timeout_ms: int = 5_000) -> None:
        self.engine: Engine = (
            SQLiteEngine(target, busy_timeout_ms) if isinstance(target, Path) else target
        )
        self._run = self.engine.run

    @property
    def dialect(self) -> Dialect:
        return self.engine.dialect

    @property
    def schema_version(self) -> int:
        return self.engine.schema_version

    async def open(self) -> None:
        await self.engine.open()

    async def close(self) -> None:
        await self.engine.close()

    async def ping(self) -> bool:
        try:
            return await self._run(lambda c: c.execute("SELECT 1 AS one").fetchone()["one"] == 1)
        except StorageError:
            return False

    async def _exec(self, sql: str, args: tuple[Any, ...]) -> None:
        await self._run(lambda c: c.execute(sql, args))


def _insert_audit(c: Conn, records: Sequence[AuditRecord], now: float) -> None:
    if not records:
        return
    c.executemany(
        "INSERT INTO audit (ts, kind, name, outcome, user_id, session_id, data) "
        "VALUES (?,?,?,?,?,?,?)",
        [
            (now, r.kind, r.name, r.outcome, r.user_id, r.session_id, codec.dump(r.data))
            for r in records
        ],
    )


class _tx:
    """BEGIN … COMMIT, or ROLLBACK on error (the connection is in autocommit mode)."""

    def __init__(self, conn: Conn) -> None:
        self._conn = conn

    def __enter__(self) -> None:
        self._conn.execute(begin(self._conn.dialect))

    def __exit__(self, exc_type: object, *_: object) -> None:
        self._conn.execute("ROLLBACK" if exc_type else "COMMIT")


MESSAGE_COLS = "id, session_id, role, content, created_at, tool_calls, tool_call_id, name"


def select_history(c: Conn, session_id: str, limit: int) -> list[MessageRecord]:
    rows = c.execute(
        f"SELECT {MESSAGE_COLS} FROM messages WHERE session_id=? ORDER BY id DESC LIMIT ?",
        (session_id, limit),
    ).fetchall()
    return [message_row(r) for r in reversed(rows)]


def message_row(r: Row) -> MessageRecord:
    """A :class:`MessageRecord` from a row with the columns of ``MESSAGE_COLS``."""
    return MessageRecord(
        id=int(r["id"]),
        session_id=r["session_id"],
        role=r["role"],
        content=r["content"],
        created_at=r["created_at"],
        tool_calls=json.loads(r["tool_calls"]) if r["tool_calls"] else None,
        tool_call_id=r["tool_call_id"],
        name=r["name"],
    )


def returned_id(cur: Cursor) -> int | None:
    """The ``id`` an ``INSERT … RETURNING id`` gave (None: the insert was skipped).
    ``fetchall`` runs the statement to its end, so SQLite commits it at once."""
    rows = cur.fetchall()
    return int(rows[0]["id"]) if rows else None


APPROVAL_FIELDS = (
    "id", "inbox_id", "user_id", "channel", "chat_id", "session_id", "title", "detail",
    "call_key", "status", "created_at", "expires_at", "decided_at",
)  # fmt: skip
APPROVAL_COLS = ", ".join(APPROVAL_FIELDS)


def approval_row(row: Row) -> ApprovalRecord:
    return ApprovalRecord(**{k: row[k] for k in APPROVAL_FIELDS})


def locked_approval(c: Conn, approval_id: str) -> ApprovalRecord | None:
    """The approval, row-locked on Postgres for the rest of the transaction: of two
    answers at once, the second sees the first."""
    row = c.execute(
        f"SELECT {APPROVAL_COLS} FROM approvals WHERE id=?{for_update(c.dialect)}",
        (approval_id,),
    ).fetchone()
    return approval_row(row) if row is not None else None
