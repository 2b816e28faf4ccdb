"""What the gateway's flow host stores in SQLite (migration 12).

- ``flow_tool_results``: a tool node's result by its idempotency key
  (``<run id>:<node id>:<attempt>``): a durable step replayed after a crash gets the
  stored result instead of calling the tool again.
- ``flow_trust``: a run's taint (where untrusted output entered it, and when) and when an
  approval node of the run was last answered yes; see ``docs/flows.md``.
- Flow approvals live in ``approvals`` with ``inbox_id`` NULL and ``call_key``
  ``flow:<run id>:<node id>`` (at most one per node: asked once).
"""

from __future__ import annotations

import json
import sqlite3
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from nexflow.bus.events import Outbound
from nexflow.storage.base import ApprovalAnswer, ApprovalRecord, AuditRecord
from nexflow.storage.sqlite_conn import SQLiteConnection, _insert_audit, _tx
from nexflow.storage.sqlite_queue import insert_outbox

_COLS = (
    "id, inbox_id, user_id, channel, chat_id, session_id, title, detail, call_key, status, "
    "created_at, expires_at, decided_at"
)
FLOW_KEY_PREFIX = "flow:"


def flow_call_key(run_id: str, node: str) -> str:
    return f"{FLOW_KEY_PREFIX}{run_id}:{node}"


def parse_flow_key(call_key: str) -> tuple[str, str] | None:
    """``(run id, node)`` of a flow approval's key; None for other approvals."""
    if not call_key.startswith(FLOW_KEY_PREFIX):
        return None
    run_id, _, node = call_key.removeprefix(FLOW_KEY_PREFIX).rpartition(":")
    return (run_id, node) if run_id and node else None


@dataclass(frozen=True, slots=True)
class FlowTrust:
    """A run's taint: ``sources`` (tool labels) since ``tainted_at``; ``approved_at`` is
    the last time an approval node of the run was answered yes."""

    sources: tuple[str, ...] = ()
    tainted_at: float | None = None
    approved_at: float | None = None


class FlowStorage(Protocol):
    """The storage operations the flow host and flow approvals need."""

    async def flow_result(self, key: str) -> dict[str, Any] | None: ...
    async def save_flow_result(
        self, key: str, run_id: str, user_id: str, result: dict[str, Any]
    ) -> dict[str, Any]: ...
    async def flow_trust(self, run_id: str) -> FlowTrust: ...
    async def taint_flow(self, run_id: str, source: str) -> None: ...
    async def flow_approved(self, run_id: str, at: float | None = None) -> None: ...
    async def copy_flow_trust(self, source: str, target: str) -> None: ...
    async def ask_flow(
        self, approval: ApprovalRecord, ask: Outbound, audit: Sequence[AuditRecord] = ()
    ) -> bool: ...
    async def answer_flow_approval(
        self, approval_id: str, user_id: str, approve: bool, audit: Sequence[AuditRecord] = ()
    ) -> tuple[ApprovalAnswer, ApprovalRecord | None]: ...
    async def answered_flow_approvals(self) -> list[ApprovalRecord]: ...
    async def expire_flow_approval(self, approval_id: str) -> None: ...
    async def user_role(self, user_id: str) -> str | None: ...


class SQLiteFlows(SQLiteConnection):
    """Flow host records of :class:`~nexflow.storage.sqlite.SQLiteStorage`."""

    async def flow_result(self, key: str) -> dict[str, Any] | None:
        def q(c: sqlite3.Connection) -> dict[str, Any] | None:
            row = c.execute("SELECT result FROM flow_tool_results WHERE key=?", (key,)).fetchone()
            return dict(json.loads(row[0])) if row else None

        return await self._run(q)

    async def save_flow_result(
        self, key: str, run_id: str, user_id: str, result: dict[str, Any]
    ) -> dict[str, Any]:
        """Store the first result for ``key`` and return what is stored (the first wins)."""

        def q(c: sqlite3.Connection) -> dict[str, Any]:
            with _tx(c):
                c.execute(
                    "INSERT OR IGNORE INTO flow_tool_results VALUES (?,?,?,?,?)",
                    (key, run_id, user_id, json.dumps(result, default=str), time.time()),
                )
                row = c.execute(
                    "SELECT result FROM flow_tool_results WHERE key=?", (key,)
                ).fetchone()
                return dict(json.loads(row[0]))

        return await self._run(q)

    async def flow_trust(self, run_id: str) -> FlowTrust:
        def q(c: sqlite3.Connection) -> FlowTrust:
            row = c.execute(
                "SELECT sources, tainted_at, approved_at FROM flow_trust WHERE run_id=?",
                (run_id,),
            ).fetchone()
            if row is None:
                return FlowTrust()
            return FlowTrust(tuple(json.loads(row[0])), row[1], row[2])

        return await self._run(q)

    async def taint_flow(self, run_id: str, source: str) -> None:
        def q(c: sqlite3.Connection) -> None:
            now = time.time()
            with _tx(c):
                row = c.execute(
                    "SELECT sources FROM flow_trust WHERE run_id=?", (run_id,)
                ).fetchone()
                sources = list(json.loads(row[0])) if row else []
                if source not in sources:
                    sources.append(source)
                c.execute(
                    "INSERT INTO flow_trust (run_id, sources, tainted_at) VALUES (?,?,?) "
                    "ON CONFLICT(run_id) DO UPDATE SET sources=excluded.sources, "
                    "tainted_at=excluded.tainted_at",
                    (run_id, json.dumps(sources), now),
                )

        await self._run(q)

    async def flow_approved(self, run_id: str, at: float | None = None) -> None:
        """An approval node of the run was answered yes (now, or ``at``: a later time
        already stored wins)."""

        def q(c: sqlite3.Connection) -> None:
            c.execute(
                "INSERT INTO flow_trust (run_id, approved_at) VALUES (?,?) "
                "ON CONFLICT(run_id) DO UPDATE SET approved_at="
                "max(excluded.approved_at, coalesce(flow_trust.approved_at, 0))",
                (run_id, time.time() if at is None else at),
            )

        await self._run(q)

    async def copy_flow_trust(self, source: str, target: str) -> None:
        """A forked or retried run inherits its parent's taint and approvals (it reuses
        the parent's steps up to the fork point)."""

        def q(c: sqlite3.Connection) -> None:
            c.execute(
                "INSERT OR REPLACE INTO flow_trust (run_id, sources, tainted_at, approved_at) "
                "SELECT ?, sources, tainted_at, approved_at FROM flow_trust WHERE run_id=?",
                (target, source),
            )

        await self._run(q)

    async def ask_flow(
        self, approval: ApprovalRecord, ask: Outbound, audit: Sequence[AuditRecord] = ()
    ) -> bool:
        """Store a flow approval, queue its card and write ``audit``, in one transaction
        and once per ``call_key``: False (and nothing stored) when this node was asked
        already."""

        def q(c: sqlite3.Connection) -> bool:
            now = time.time()
            with _tx(c):
                seen = c.execute(
                    "SELECT 1 FROM approvals WHERE call_key=? AND inbox_id IS NULL",
                    (approval.call_key,),
                ).fetchone()
                if seen:
                    return False
                c.execute(
                    f"INSERT INTO approvals ({_COLS}) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?)",
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

        def q(c: sqlite3.Connection) -> tuple[ApprovalAnswer, ApprovalRecord | None]:
            now = time.time()
            with _tx(c):
                row = c.execute(
                    f"SELECT {_COLS} FROM approvals WHERE id=?", (approval_id,)
                ).fetchone()
                if row is None:
                    return "unknown", None
                a = ApprovalRecord(*row)
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

        def q(c: sqlite3.Connection) -> None:
            c.execute(
                "UPDATE approvals SET status='expired' WHERE id=? "
                "AND status IN ('approved','declined')",
                (approval_id,),
            )

        await self._run(q)

    async def answered_flow_approvals(self) -> list[ApprovalRecord]:
        """Flow approvals answered yes or no that have not run out: the answers a crash
        may have kept from their node (stored, not yet delivered to the engine)."""

        def q(c: sqlite3.Connection) -> list[ApprovalRecord]:
            rows = c.execute(
                f"SELECT {_COLS} FROM approvals WHERE inbox_id IS NULL AND call_key LIKE ? "
                "AND status IN ('approved','declined') AND expires_at > ? ORDER BY decided_at",
                (f"{FLOW_KEY_PREFIX}%", time.time()),
            ).fetchall()
            return [ApprovalRecord(*row) for row in rows]

        return await self._run(q)

    async def user_role(self, user_id: str) -> str | None:
        def q(c: sqlite3.Connection) -> str | None:
            row = c.execute("SELECT role FROM users WHERE id=?", (user_id,)).fetchone()
            return str(row[0]) if row else None

        return await self._run(q)
