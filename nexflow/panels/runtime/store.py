"""Panel instances and versions in the gateway's storage (SQLite or Postgres).

Tables ``panels`` and ``panel_versions`` (migration 2; ``panels.workspace``, the
workspace of its owner a panel belongs to, is migration 7). A commit updates the
instance and appends its version in one transaction, guarded by the version
number the caller read (optimistic concurrency), so a state is never lost
between two writers.
"""

from __future__ import annotations

import json
import time
from typing import Any

from nexflow.panels.runtime.errors import PanelNotFound, PanelRuntimeError, VersionNotFound
from nexflow.panels.runtime.versions import Change, PanelRecord, VersionRecord
from nexflow.storage.connection import SQLConnection, _tx
from nexflow.storage.dialect import key_lock
from nexflow.storage.engine import Conn, Row

_PANEL_COLS = (
    "id, template, owner, title, nxml, state, view, version, grants, created_at, updated_at, "
    "workspace"
)
_VERSION_COLS = (
    "panel_id, version, kind, tool, args, state_before, state_after, view_before, view_after, "
    "effects, triggered_by, user_id, created_at"
)

_CREATE_LOCK = 7_331_005  # the Postgres advisory lock namespace of new panel ids


class StaleVersion(PanelRuntimeError):
    """The instance changed since it was read (another writer committed first)."""

    code = "conflict"


def _dump(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"))


def _panel(row: Row) -> PanelRecord:
    return PanelRecord(
        id=row["id"],
        template=row["template"],
        owner=row["owner"],
        title=row["title"],
        nxml=row["nxml"],
        state=json.loads(row["state"]),
        view=json.loads(row["view"]),
        version=int(row["version"]),
        grants=tuple(json.loads(row["grants"])),
        created_at=float(row["created_at"]),
        updated_at=float(row["updated_at"]),
        workspace=str(row["workspace"]),
    )


def _version(row: Row) -> VersionRecord:
    return VersionRecord(
        panel_id=row["panel_id"],
        version=int(row["version"]),
        kind=row["kind"],
        tool=row["tool"],
        args=json.loads(row["args"]),
        state_before=json.loads(row["state_before"]),
        state_after=json.loads(row["state_after"]),
        view_before=json.loads(row["view_before"]),
        view_after=json.loads(row["view_after"]),
        effects=json.loads(row["effects"]),
        triggered_by=row["triggered_by"],
        user_id=row["user_id"],
        created_at=float(row["created_at"]),
    )


def _insert_version(
    c: Conn,
    before: PanelRecord | None,
    panel_id: str,
    version: int,
    ch: Change,
    now: float,
) -> None:
    c.execute(
        f"INSERT INTO panel_versions ({_VERSION_COLS}, event_key) "
        "VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?)",
        (
            panel_id,
            version,
            ch.kind,
            ch.tool,
            _dump(ch.args or {}),
            _dump(before.state if before else {}),
            _dump(ch.state),
            _dump(before.view if before else {}),
            _dump(ch.view),
            _dump(list(ch.effects)),
            ch.triggered_by,
            ch.user_id,
            now,
            ch.event_key,
        ),
    )


class PanelStore:
    """Repository of panel instances. Every method runs on the connection's DB thread."""

    def __init__(self, conn: SQLConnection) -> None:
        self._conn = conn

    async def create(
        self,
        base_id: str,
        template: str,
        owner: str,
        title: str,
        nxml: str,
        change: Change,
        grants: tuple[str, ...] = (),
        workspace: str = "default",
    ) -> PanelRecord:
        """Insert a new instance (id ``base_id``, else ``base_id-2``, ``-3``...) at version 1,
        in ``workspace`` of its owner."""

        def q(c: Conn) -> PanelRecord:
            now = time.time()
            with _tx(c):
                lock = key_lock(c.dialect, _CREATE_LOCK)  # Postgres: replicas pick ids in turn
                if lock is not None:
                    c.execute(lock, (base_id,))
                taken = {
                    str(r["id"])
                    for r in c.execute(
                        "SELECT id FROM panels WHERE id = ? OR id LIKE ?", (base_id, f"{base_id}-%")
                    ).fetchall()
                }
                panel_id, n = base_id, 1
                while panel_id in taken:
                    n += 1
                    panel_id = f"{base_id}-{n}"
                c.execute(
                    f"INSERT INTO panels ({_PANEL_COLS}) VALUES (?,?,?,?,?,?,?,?,?,?,?,?)",
                    (panel_id, template, owner, title, nxml, _dump(change.state),
                     _dump(change.view), 1, _dump(list(grants)), now, now, workspace),
                )  # fmt: skip
                _insert_version(c, None, panel_id, 1, change, now)
            return PanelRecord(
                panel_id,
                template,
                owner,
                title,
                nxml,
                change.state,
                change.view,
                1,
                grants,
                now,
                now,
                workspace,
            )

        return await self._conn._run(q)

    async def commit(self, before: PanelRecord, change: Change) -> PanelRecord:
        """Apply ``change`` on top of ``before`` and append its version, or raise StaleVersion."""

        def q(c: Conn) -> PanelRecord:
            now = time.time()
            version = before.version + 1
            with _tx(c):
                nxml = before.nxml if change.nxml is None else change.nxml
                cur = c.execute(
                    "UPDATE panels SET state=?, view=?, nxml=?, version=?, updated_at=? "
                    "WHERE id=? AND version=?",
                    (_dump(change.state), _dump(change.view), nxml, version, now, before.id,
                     before.version),
                )  # fmt: skip
                if cur.rowcount != 1:
                    raise StaleVersion(f"panel {before.id!r} changed meanwhile; try again")
                _insert_version(c, before, before.id, version, change, now)
            return PanelRecord(
                before.id, before.template, before.owner, before.title, nxml,
                change.state, change.view, version, before.grants, before.created_at, now,
                before.workspace,
            )  # fmt: skip

        return await self._conn._run(q)

    async def set_grants(self, panel_id: str, grants: tuple[str, ...]) -> None:
        def q(c: Conn) -> None:
            cur = c.execute(
                "UPDATE panels SET grants=? WHERE id=?", (_dump(list(grants)), panel_id)
            )
            if cur.rowcount != 1:
                raise PanelNotFound(f"there is no panel {panel_id!r}")

        await self._conn._run(q)

    async def get(self, panel_id: str) -> PanelRecord | None:
        def q(c: Conn) -> PanelRecord | None:
            row = c.execute(f"SELECT {_PANEL_COLS} FROM panels WHERE id=?", (panel_id,)).fetchone()
            return _panel(row) if row else None

        return await self._conn._run(q)

    async def all(self) -> list[PanelRecord]:
        def q(c: Conn) -> list[PanelRecord]:
            rows = c.execute(f"SELECT {_PANEL_COLS} FROM panels ORDER BY created_at, id").fetchall()
            return [_panel(r) for r in rows]

        return await self._conn._run(q)

    async def delete(self, panel_id: str) -> bool:
        def q(c: Conn) -> bool:
            with _tx(c):
                c.execute("DELETE FROM panel_versions WHERE panel_id=?", (panel_id,))
                return c.execute("DELETE FROM panels WHERE id=?", (panel_id,)).rowcount == 1

        return await self._conn._run(q)

    async def versions(self, panel_id: str, limit: int = 100) -> list[VersionRecord]:
        """Newest first."""

        def q(c: Conn) -> list[VersionRecord]:
            rows = c.execute(
                f"SELECT {_VERSION_COLS} FROM panel_versions WHERE panel_id=? "
                "ORDER BY version DESC LIMIT ?",
                (panel_id, limit),
            ).fetchall()
            return [_version(r) for r in rows]

        return await self._conn._run(q)

    async def by_event(self, panel_id: str, event_key: str) -> VersionRecord | None:
        """The version a press with ``event_key`` made, if it was applied already."""

        def q(c: Conn) -> VersionRecord | None:
            row = c.execute(
                f"SELECT {_VERSION_COLS} FROM panel_versions WHERE panel_id=? AND event_key=?",
                (panel_id, event_key),
            ).fetchone()
            return _version(row) if row else None

        return await self._conn._run(q)

    async def version(self, panel_id: str, version: int) -> VersionRecord:
        def q(c: Conn) -> VersionRecord:
            row = c.execute(
                f"SELECT {_VERSION_COLS} FROM panel_versions WHERE panel_id=? AND version=?",
                (panel_id, version),
            ).fetchone()
            if row is None:
                raise VersionNotFound(f"panel {panel_id!r} has no version {version}")
            return _version(row)

        return await self._conn._run(q)
