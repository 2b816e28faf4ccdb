"""Patch rows and shares in SQLite (migration 6), on the gateway's shared connection.

A row is written only after its branch exists (see ``docs/workspaces.md``, crash
guarantees). ``head`` is the patch commit, kept so a merged or rejected patch can still
be diffed after its branch is gone; ``applied`` says whether a merged patch has reached
the live panel (0 after the merge, 1 once the panel store committed it).
"""

from __future__ import annotations

import sqlite3
import time
from dataclasses import dataclass
from typing import Any, cast

from nexflow.storage.sqlite_conn import SQLiteConnection
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


def _row(r: tuple[Any, ...]) -> PatchRow:
    patch = Patch(
        id=r[0],
        workspace=r[1],
        user_id=r[2],
        target=r[3],
        status=cast(PatchStatus, r[4]),
        summary=r[5],
        branch=r[6],
        base=r[7],
        source=r[8],
        reason=r[9],
        created_at=float(r[10]),
        updated_at=float(r[11]),
        merge_commit=r[12],
    )
    return PatchRow(patch, r[13], bool(r[14]))


class PatchStore:
    def __init__(self, conn: SQLiteConnection) -> None:
        self._conn = conn

    async def insert(self, patch: Patch, head: str) -> None:
        p = patch

        def q(c: sqlite3.Connection) -> None:
            c.execute(
                f"INSERT INTO patches ({_COLS}) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)",
                (p.id, p.workspace, p.user_id, p.target, p.status, p.summary, p.branch, p.base,
                 p.source, p.reason, p.created_at, p.updated_at, p.merge_commit, head, 0),
            )  # fmt: skip

        await self._conn._run(q)

    async def get(self, patch_id: str) -> PatchRow | None:
        def q(c: sqlite3.Connection) -> PatchRow | None:
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

        def q(c: sqlite3.Connection) -> list[PatchRow]:
            return [_row(r) for r in c.execute(sql, (*args, limit))]

        return await self._conn._run(q)

    async def count(self, workspace: str, status: PatchStatus) -> int:
        def q(c: sqlite3.Connection) -> int:
            row = c.execute(
                "SELECT COUNT(*) FROM patches WHERE workspace=? AND status=?", (workspace, status)
            ).fetchone()
            return int(row[0])

        return await self._conn._run(q)

    async def update(self, patch_id: str, **fields: Any) -> PatchRow:
        """Set columns (status, base, head, reason, merge_commit, applied) and updated_at."""
        fields["updated_at"] = time.time()
        sets = ", ".join(f"{k}=?" for k in fields)

        def q(c: sqlite3.Connection) -> PatchRow:
            c.execute(f"UPDATE patches SET {sets} WHERE id=?", (*fields.values(), patch_id))
            r = c.execute(f"SELECT {_COLS} FROM patches WHERE id=?", (patch_id,)).fetchone()
            return _row(r)

        return await self._conn._run(q)

    async def unapplied(self) -> list[PatchRow]:
        def q(c: sqlite3.Connection) -> list[PatchRow]:
            rows = c.execute(
                f"SELECT {_COLS} FROM patches WHERE status='merged' AND applied=0 "
                "ORDER BY updated_at"
            )
            return [_row(r) for r in rows]

        return await self._conn._run(q)

    # -- shares ---------------------------------------------------------------------

    async def add_share(self, workspace: str, user_id: str, branch: str) -> None:
        def q(c: sqlite3.Connection) -> None:
            c.execute(
                "INSERT OR IGNORE INTO workspace_shares VALUES (?,?,?,?)",
                (workspace, user_id, branch, time.time()),
            )

        await self._conn._run(q)

    async def shares(
        self, *, workspace: str | None = None, user_id: str | None = None
    ) -> list[tuple[str, str, str]]:
        """(workspace, user_id, branch) rows for one workspace or one invited user."""

        def q(c: sqlite3.Connection) -> list[tuple[str, str, str]]:
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
            return [(str(a), str(b), str(d)) for a, b, d in rows]

        return await self._conn._run(q)
