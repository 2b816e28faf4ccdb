"""Patch rows and shares (migration 6) in the gateway's storage (SQLite or Postgres).

A row is written only after its branch exists (see ``docs/workspaces.md``, crash
guarantees). ``head`` is the patch commit, kept so a merged or rejected patch can still
be diffed after its branch is gone; ``applied`` says whether a merged patch has reached
the live panel (0 after the merge, 1 once the panel store committed it).
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any, cast

from nexflow.storage.connection import SQLConnection
from nexflow.storage.engine import Conn, Row
from nexflow.workspace.api import Patch, PatchStatus

_COLS = (
    "id, workspace, user_id, target, status, summary, branch, base, source, reason, "
    "created_at, updated_at, merge_commit, head, applied"
)


@dataclass(frozen=True, slots=True)
class PatchRow:
    patch: Patch
    head: str
    applied: bool


def _row(r: Row) -> PatchRow:
    patch = Patch(
        id=r["id"],
        workspace=r["workspace"],
        user_id=r["user_id"],
        target=r["target"],
        status=cast(PatchStatus, r["status"]),
        summary=r["summary"],
        branch=r["branch"],
        base=r["base"],
        source=r["source"],
        reason=r["reason"],
        created_at=float(r["created_at"]),
        updated_at=float(r["updated_at"]),
        merge_commit=r["merge_commit"],
    )
    return PatchRow(patch, r["head"], bool(r["applied"]))


class PatchStore:
    def __init__(self, conn: SQLConnection) -> None:
        self._conn = conn

    async def insert(self, patch: Patch, head: str) -> None:
        p = patch

        def q(c: Conn) -> None:
            c.execute(
                f"INSERT INTO patches ({_COLS}) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)",
                (p.id, p.workspace, p.user_id, p.target, p.status, p.summary, p.branch, p.base,
                 p.source, p.reason, p.created_at, p.updated_at, p.merge_commit, head, 0),
            )  # fmt: skip

        await self._conn._run(q)

    async def get(self, patch_id: str) -> PatchRow | None:
        def q(c: Conn) -> PatchRow | None:
            r = c.execute(f"SELECT {_COLS} FROM patches WHERE id=?", (patch_id,)).fetchone()
            return _row(r) if r else None

        return await self._conn._run(q)

    async def select(
        self,
        user_id: str | None = None,
        status: PatchStatus | None = None,
        workspace: str | None = None,
        limit: int = 500,
    ) -> list[PatchRow]:
        where, args = [], []
        for column, value in (("user_id", user_id), ("status", status), ("workspace", workspace)):
            if value is not None:
                where.append(f"{column}=?")
                args.append(value)
        sql = f"SELECT {_COLS} FROM patches"
        if where:
            sql += " WHERE " + " AND ".join(where)
        sql += " ORDER BY created_at DESC, id LIMIT ?"

        def q(c: Conn) -> list[PatchRow]:
            return [_row(r) for r in c.execute(sql, (*args, limit)).fetchall()]

        return await self._conn._run(q)

    async def count(self, workspace: str, status: PatchStatus) -> int:
        def q(c: Conn) -> int:
            row = c.execute(
                "SELECT COUNT(*) AS n FROM patches WHERE workspace=? AND status=?",
                (workspace, status),
            ).fetchone()
            return int(row["n"])

        return await self._conn._run(q)

    async def update(self, patch_id: str, **fields: Any) -> PatchRow:
        """Set columns (status, base, head, reason, merge_commit, applied) and updated_at."""
        fields["updated_at"] = time.time()
        sets = ", ".join(f"{k}=?" for k in fields)

        def q(c: Conn) -> PatchRow:
            r = c.execute(
                f"UPDATE patches SET {sets} WHERE id=? RETURNING {_COLS}",
                (*fields.values(), patch_id),
            ).fetchone()
            return _row(r)

        return await self._conn._run(q)

    async def unapplied(self) -> list[PatchRow]:
        def q(c: Conn) -> list[PatchRow]:
            rows = c.execute(
                f"SELECT {_COLS} FROM patches WHERE status='merged' AND applied=0 "
                "ORDER BY updated_at"
            ).fetchall()
            return [_row(r) for r in rows]

        return await self._conn._run(q)

    # -- shares ---------------------------------------------------------------------

    async def add_share(self, workspace: str, user_id: str, branch: str) -> None:
        def q(c: Conn) -> None:
            c.execute(
                "INSERT INTO workspace_shares (workspace, user_id, branch, created_at) "
                "VALUES (?,?,?,?) ON CONFLICT DO NOTHING",
                (workspace, user_id, branch, time.time()),
            )

        await self._conn._run(q)

    async def shares(
        self, *, workspace: str | None = None, user_id: str | None = None
    ) -> list[tuple[str, str, str]]:
        """(workspace, user_id, branch) rows for one workspace or one invited user."""

        def q(c: Conn) -> list[tuple[str, str, str]]:
            if workspace is not None:
                rows = c.execute(
                    "SELECT workspace, user_id, branch FROM workspace_shares WHERE workspace=? "
                    "ORDER BY created_at",
                    (workspace,),
                )
            else:
                rows = c.execute(
                    "SELECT workspace, user_id, branch FROM workspace_shares WHERE user_id=? "
                    "ORDER BY created_at",
                    (user_id,),
                )
            return [
                (str(r["workspace"]), str(r["user_id"]), str(r["branch"])) for r in rows.fetchall()
            ]

        return await self._conn._run(q)
