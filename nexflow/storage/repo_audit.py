"""The audit log and background task records (SQLite and Postgres): the
:class:`~nexflow.storage.base.Audit` and :class:`~nexflow.storage.base.Tasks` aggregates,
mixed into ``SQLStorage``.

Audit records that belong to a change are written in that change's transaction by the
repository making it (a turn's result, a pairing decision) through
:func:`~nexflow.storage.connection._insert_audit`; :meth:`AuditRepo.audit` is for records
that stand alone (a delivery given up, a flow's approval).
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Sequence
from typing import Any

from nexflow.storage import codec
from nexflow.storage.base import AuditRecord, TaskRecord
from nexflow.storage.connection import SQLConnection, _insert_audit
from nexflow.storage.engine import Conn

_AUDIT_KEYS = ("id", "ts", "kind", "name", "outcome", "user_id", "session_id")
_TASK_COLS = "id, kind, status, payload, result, progress, created_at, updated_at"


class AuditRepo(SQLConnection):
    """Audit and task operations of :class:`~nexflow.storage.sql_storage.SQLStorage`."""

    async def audit(self, records: Sequence[AuditRecord]) -> None:
        if records:
            await self._run(lambda c: _insert_audit(c, records, time.time()))

    async def audit_tail(self, limit: int, kind: str | None = None) -> list[dict[str, Any]]:
        def q(c: Conn) -> list[dict[str, Any]]:
            where, args = ("WHERE kind=?", (kind,)) if kind else ("", ())
            rows = c.execute(
                "SELECT id, ts, kind, name, outcome, user_id, session_id, data FROM audit "
                f"{where} ORDER BY id DESC LIMIT ?",
                (*args, limit),
            ).fetchall()
            return [{**{k: r[k] for k in _AUDIT_KEYS}, "data": json.loads(r["data"])} for r in rows]

        return await self._run(q)

    async def create_task(self, kind: str, payload: dict[str, Any]) -> TaskRecord:
        now = time.time()
        task = TaskRecord(uuid.uuid4().hex, kind, "queued", payload, None, 0.0, now, now)
        await self._exec(
            "INSERT INTO tasks (id, kind, status, payload, created_at, updated_at) "
            "VALUES (?,?,?,?,?,?)",
            (task.id, kind, task.status, codec.dump(payload), task.created_at, task.updated_at),
        )
        return task

    async def get_task(self, task_id: str) -> TaskRecord | None:
        def q(c: Conn) -> TaskRecord | None:
            r = c.execute(f"SELECT {_TASK_COLS} FROM tasks WHERE id=?", (task_id,)).fetchone()
            if r is None:
                return None
            return TaskRecord(
                id=r["id"],
                kind=r["kind"],
                status=r["status"],
                payload=json.loads(r["payload"]),
                result=json.loads(r["result"]) if r["result"] else None,
                progress=r["progress"],
                created_at=r["created_at"],
                updated_at=r["updated_at"],
            )

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
            (
                status,
                progress,
                codec.dump(result) if result is not None else None,
                time.time(),
                task_id,
            ),
        )
