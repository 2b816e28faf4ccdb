"""What the gateway's flow host stores (migration 12), on SQLite or Postgres.

- ``flow_tool_results``: a tool node's result by its idempotency key
  (``<run id>:<node id>:<attempt>``): a durable step replayed after a crash gets the
  stored result instead of calling the tool again.
- Flow approvals live in ``approvals`` with ``inbox_id`` NULL and ``call_key``
  ``flow:<run id>:<node id>`` (at most one per node: asked once).
"""

from __future__ import annotations

import json
import time
from collections.abc import Sequence
from typing import Any, Protocol

from nexflow.bus.events import Outbound
from nexflow.storage.base import ApprovalAnswer, ApprovalRecord, AuditRecord
from nexflow.storage.connection import (
    APPROVAL_COLS,
    SQLConnection,
    _insert_audit,
    _tx,
    approval_row,
    locked_approval,
)
from nexflow.storage.dialect import key_lock
from nexflow.storage.engine import Conn
from nexflow.storage.repo_queue import insert_outbox

FLOW_KEY_PREFIX = "flow:"
# Postgres advisory lock namespace: a flow approval's call key.
_ASK_LOCK = 7_331_004


def _lock(c: Conn, namespace: int, key: str) -> None:
    lock = key_lock(c.dialect, namespace)
    if lock is not None:
        c.execute(lock, (key,))


def flow_call_key(run_id: str, node: str) -> str:
    return f"{FLOW_KEY_PREFIX}{run_id}:{node}"


def parse_flow_key(call_key: str) -> tuple[str, str] | None:
    """``(run id, node)`` of a flow approval's key; None for other approvals."""
    if not call_key.startswith(FLOW_KEY_PREFIX):
        return None
    run_id, _, node = call_key.removeprefix(FLOW_KEY_PREFIX).rpartition(":")
    return (run_id, node) if run_id and node else None


class FlowStorage(Protocol):
    """The storage operations the flow host and flow approvals need."""

    async def flow_result(self, key: str) -> dict[str, Any] | None: ...
    async def save_flow_result(
        self, key: str, run_id: str, user_id: str, result: dict[str, Any]
    ) -> dict[str, Any]: ...
    async def ask_flow(
        self, approval: ApprovalRecord, ask: Outbound, audit: Sequence[AuditRecord] = ()
    ) -> bool: ...
    async def answer_flow_approval(
        self, approval_id: str, user_id: str, approve: bool, audit: Sequence[AuditRecord] = ()
    ) -> tuple[ApprovalAnswer, ApprovalRecord | None]: ...
    async def answered_flow_approvals(self) -> list[ApprovalRecord]: ...
    async def expire_flow_approval(self, approval_id: str) -> None: ...
    async def user_role(self, user_id: str) -> str | None: ...


class FlowRepo(SQLConnection):
    """Flow host records of :class:`~nexflow.storage.sql_storage.SQLStorage`."""

    async def flow_result(self, key: str) -> dict[str, Any] | None:
        def q(c: Conn) -> dict[str, Any] | None:
            row = c.execute("SELECT result FROM flow_tool_results WHERE key=?", (key,)).fetchone()
            return dict(json.loads(row["result"])) if row else None

        return await self._run(q)

    async def save_flow_result(
        self, key: str, run_id: str, user_id: str, result: dict[str, Any]
    ) -> dict[str, Any]:
        """Store the first result for ``key`` and return what is stored (the first wins)."""

        def q(c: Conn) -> dict[str, Any]:
            with _tx(c):
                c.execute(
                    "INSERT INTO flow_tool_results (key, run_id, user_id, result, created_at) "
                    "VALUES (?,?,?,?,?) ON CONFLICT DO NOTHING",
                    (key, run_id, user_id, json.dumps(result, default=str), time.time()),
                )
                row = c.execute(
                    "SELECT result FROM flow_tool_results WHERE key=?", (key,)
                ).fetchone()
                return dict(json.loads(row["result"]))

        return await self._run(q)

    async def ask_flow(
        self, approval: ApprovalRecord, ask: Outbound, audit: Sequence[AuditRecord] = ()
    ) -> bool:
        """Store a flow approval, queue its card and write ``audit``, in one transaction
        and once per ``call_key``: False (and nothing stored) when this node was asked
        already."""

        def q(c: Conn) -> bool:
            now = time.time()
            with _tx(c):
                _lock(c, _ASK_LOCK, approval.call_key)
                seen = c.execute(
                    "SELECT 1 FROM approvals WHERE call_key=? AND inbox_id IS NULL",
                    (approval.call_key,),
                ).fetchone()
                if seen:
                    return False
                c.execute(
                    f"INSERT INTO approvals ({APPROVAL_COLS}) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?)",
                    (
                        approval.id, None, approval.user_id, approval.channel,
                        approval.chat_id, approval.session_id, approval.title,
                        approval.detail, approval.call_key, "pending", now,
                        approval.expires_at, None,
                    ),
                )  # fmt: skip
                insert_outbox(c, ask, now)
                _insert_audit(c, audit, now)
                return True

        return await self._run(q)

    async def answer_flow_approval(
        self, approval_id: str, user_id: str, approve: bool, audit: Sequence[AuditRecord] = ()
    ) -> tuple[ApprovalAnswer, ApprovalRecord | None]:
        """Record the owner's answer to a flow approval once, with ``audit`` in the same
        transaction: ``expired`` (nothing written) when it was answered already or ran
        out."""

        def q(c: Conn) -> tuple[ApprovalAnswer, ApprovalRecord | None]:
            now = time.time()
            with _tx(c):
                a = locked_approval(c, approval_id)
                if a is None:
                    return "unknown", None
                if a.user_id != user_id:
                    return "not_yours", None
                if a.status != "pending" or a.expires_at <= now:
                    return "expired", a
                c.execute(
                    "UPDATE approvals SET status=?, decided_at=? WHERE id=?",
                    ("approved" if approve else "declined", now, approval_id),
                )
                _insert_audit(c, audit, now)
                return ("approved" if approve else "declined"), a

        return await self._run(q)

    async def expire_flow_approval(self, approval_id: str) -> None:
        """An answer its node could not take (it no longer waits: the run was paused,
        stopped or ended): the user was told it expired, so it is not redelivered later."""

        def q(c: Conn) -> None:
            c.execute(
                "UPDATE approvals SET status='expired' WHERE id=? "
                "AND status IN ('approved','declined')",
                (approval_id,),
            )

        await self._run(q)

    async def answered_flow_approvals(self) -> list[ApprovalRecord]:
        """Flow approvals answered yes or no that have not run out: the answers a crash
        may have kept from their node (stored, not yet delivered to the engine)."""

        def q(c: Conn) -> list[ApprovalRecord]:
            rows = c.execute(
                f"SELECT {APPROVAL_COLS} FROM approvals WHERE inbox_id IS NULL AND call_key LIKE ? "
                "AND status IN ('approved','declined') AND expires_at > ? ORDER BY decided_at",
                (f"{FLOW_KEY_PREFIX}%", time.time()),
            ).fetchall()
            return [approval_row(row) for row in rows]

        return await self._run(q)

    async def user_role(self, user_id: str) -> str | None:
        def q(c: Conn) -> str | None:
            row = c.execute("SELECT role FROM users WHERE id=?", (user_id,)).fetchone()
            return str(row["role"]) if row else None

        return await self._run(q)
