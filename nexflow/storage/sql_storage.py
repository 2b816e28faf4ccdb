"""The implementation of :class:`~nexflow.storage.base.Storage`, on SQLite (default) or
Postgres: the same queries run on either engine (see ``connection`` and ``engine``)."""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Sequence
from typing import Any

from nexflow.storage import codec
from nexflow.storage.base import (
    AuditRecord,
    MessageRecord,
    SessionRecord,
    SessionSummary,
    TaskRecord,
)
from nexflow.storage.connection import (
    MESSAGE_COLS,
    _insert_audit,
    _tx,
    message_row,
    select_history,
)
from nexflow.storage.dialect import json_text
from nexflow.storage.engine import Conn, SQLiteConn
from nexflow.storage.repo_agents import AgentRepo
from nexflow.storage.repo_dashboard import DashboardRepo
from nexflow.storage.repo_flows import FlowRepo
from nexflow.storage.repo_hooks import HookRepo
from nexflow.storage.repo_identity import IDENTITY_LOCK, IdentityRepo, lock_key
from nexflow.storage.repo_queue import QueueRepo
from nexflow.storage.repo_stats import StatsRepo
from nexflow.storage.repo_turns import _SESSION_COLS, TurnRepo, session_row
from nexflow.storage.repo_usage import UsageRepo


class SQLStorage(
    QueueRepo,
    TurnRepo,
    IdentityRepo,
    UsageRepo,
    HookRepo,
    StatsRepo,
    FlowRepo,
    AgentRepo,
    DashboardRepo,
):
    """The storage: a single SQLite file (default), or a Postgres database given a
    :class:`~nexflow.storage.engine.PostgresEngine`."""

    # -- identities ---------------------------------------------------------------

    async def find_user(self, channel: str, external_id: str) -> tuple[str, str] | None:
        def q(c: Conn) -> tuple[str, str] | None:
            row = c.execute(
                "SELECT u.id, u.role FROM identities i JOIN users u ON u.id = i.user_id "
                "WHERE i.channel=? AND i.external_id=?",
                (channel, external_id),
            ).fetchone()
            return (str(row["id"]), str(row["role"])) if row else None

        return await self._run(q)

    async def create_user(self, name: str, role: str, channel: str, external_id: str) -> str:
        def q(c: Conn) -> str:
            now = time.time()
            with _tx(c):
                # Postgres: one sender created once, and one owner, by concurrent replicas.
                lock_key(
                    c, IDENTITY_LOCK, "owner" if role == "owner" else f"{channel}:{external_id}"
                )
                row = c.execute(
                    "SELECT user_id FROM identities WHERE channel=? AND external_id=?",
                    (channel, external_id),
                ).fetchone()
                if row:
                    return str(row["user_id"])
                # The owner is one person on every channel (security.owner, the gateway
                # token): a new owner identity joins the existing owner user.
                owner = (
                    c.execute(
                        "SELECT id FROM users WHERE role='owner' ORDER BY created_at LIMIT 1"
                    ).fetchone()
                    if role == "owner"
                    else None
                )
                user_id = str(owner["id"]) if owner else uuid.uuid4().hex
                if owner is None:
                    c.execute(
                        "INSERT INTO users (id, name, role, created_at) VALUES (?,?,?,?)",
                        (user_id, name, role, now),
                    )
                c.execute(
                    "INSERT INTO identities (channel, external_id, user_id, created_at) "
                    "VALUES (?,?,?,?)",
                    (channel, external_id, user_id, now),
                )
                return user_id

        return await self._run(q)

    # -- sessions -----------------------------------------------------------------

    async def ensure_session(
        self, session_id: str | None, user_id: str, channel: str, chat_id: str
    ) -> SessionRecord:
        def q(c: Conn) -> SessionRecord:
            sid = session_id or uuid.uuid4().hex
            now = time.time()
            c.execute(
                f"INSERT INTO sessions ({_SESSION_COLS}) VALUES (?,?,?,?,?,?,?) "
                "ON CONFLICT(id) DO NOTHING",
                (sid, user_id, channel, chat_id, "", now, now),
            )
            row = c.execute(f"SELECT {_SESSION_COLS} FROM sessions WHERE id=?", (sid,)).fetchone()
            return session_row(row)

        return await self._run(q)

    async def chat_session(self, user_id: str, channel: str, chat_id: str) -> SessionRecord:
        def q(c: Conn) -> SessionRecord:
            row = c.execute(
                f"SELECT {_SESSION_COLS} FROM sessions WHERE user_id=? AND channel=? AND chat_id=? "
                "ORDER BY created_at DESC LIMIT 1",
                (user_id, channel, chat_id),
            ).fetchone()
            if row:
                return session_row(row)
            now = time.time()
            record = SessionRecord(uuid.uuid4().hex, user_id, channel, chat_id, "", now, now)
            c.execute(
                f"INSERT INTO sessions ({_SESSION_COLS}) VALUES (?,?,?,?,?,?,?)", _astuple(record)
            )
            return record

        return await self._run(q)

    async def get_session(self, session_id: str) -> SessionRecord | None:
        def q(c: Conn) -> SessionRecord | None:
            row = c.execute(
                f"SELECT {_SESSION_COLS} FROM sessions WHERE id=?", (session_id,)
            ).fetchone()
            return session_row(row) if row else None

        return await self._run(q)

    async def list_sessions(self, user_id: str | None, limit: int) -> list[SessionRecord]:
        def q(c: Conn) -> list[SessionRecord]:
            where, args = ("WHERE user_id=?", (user_id,)) if user_id else ("", ())
            rows = c.execute(
                f"SELECT {_SESSION_COLS} FROM sessions {where} ORDER BY updated_at DESC LIMIT ?",
                (*args, limit),
            ).fetchall()
            return [session_row(r) for r in rows]

        return await self._run(q)

    async def session_summaries(
        self, user_id: str, query: str | None, limit: int
    ) -> list[SessionSummary]:
        """The list of conversations (``GET /api/v1/sessions``): the title is the session's
        own, else its first user message (else its first accepted one, still running).
        ``query`` matches message text case-insensitively in any script (``casefold``,
        which SQLite's ``LIKE`` and ``lower`` do only for ASCII)."""

        def q(c: Conn) -> list[SessionSummary]:
            where, args = "s.user_id=?", [user_id]
            needle = (query or "").strip().casefold()
            if needle:
                if isinstance(c, SQLiteConn):
                    c.raw.create_function("nx_fold", 1, _fold, deterministic=True)
                    found = "instr(nx_fold(f.content), ?) > 0"
                else:  # Postgres lowers case in any script itself (a UTF-8 locale)
                    found = "strpos(lower(f.content), ?) > 0"
                    needle = (query or "").strip().lower()  # as lower() does: ß stays ß
                where += (
                    " AND EXISTS (SELECT 1 FROM messages f WHERE f.session_id=s.id "
                    f"AND f.role IN ('user','assistant') AND {found})"
                )
                args.append(needle)
            rows = c.execute(
                "SELECT s.id, s.channel, s.title, s.created_at, s.updated_at, "
                "(SELECT COUNT(*) FROM messages m WHERE m.session_id=s.id AND "
                "(m.role='user' OR (m.role='assistant' AND m.content != ''))) AS messages, "
                "COALESCE((SELECT content FROM messages m WHERE m.session_id=s.id "
                "AND m.role='user' ORDER BY m.id LIMIT 1), "
                f"(SELECT {json_text(c.dialect, 'i.payload', '$.message')} FROM inbox i "
                "WHERE i.session_id=s.id ORDER BY i.id LIMIT 1), '') AS first_said "
                f"FROM sessions s WHERE {where} ORDER BY s.updated_at DESC LIMIT ?",
                (*args, limit),
            ).fetchall()
            return [
                SessionSummary(
                    id=str(r["id"]),
                    channel=str(r["channel"]),
                    title=_title(r["title"] or r["first_said"] or ""),
                    created_at=r["created_at"],
                    updated_at=r["updated_at"],
                    messages=int(r["messages"]),
                )
                for r in rows
            ]

        return await self._run(q)

    async def history(self, session_id: str, limit: int) -> list[MessageRecord]:
        return await self._run(lambda c: select_history(c, session_id, limit))

    async def session_messages(
        self, session_id: str, after_id: int, until_id: int | None, limit: int
    ) -> list[MessageRecord]:
        def q(c: Conn) -> list[MessageRecord]:
            rows = c.execute(
                f"SELECT {MESSAGE_COLS} FROM messages "
                "WHERE session_id=? AND id>? AND id<=? ORDER BY id LIMIT ?",
                (session_id, after_id, until_id if until_id is not None else 2**62, limit),
            ).fetchall()
            return [message_row(r) for r in rows]

        return await self._run(q)

    # -- audit and tasks ----------------------------------------------------------

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
            keys = ("id", "ts", "kind", "name", "outcome", "user_id", "session_id")
            return [{**{k: r[k] for k in keys}, "data": json.loads(r["data"])} for r in rows]

        return await self._run(q)

    async def create_task(self, kind: str, payload: dict[str, Any]) -> TaskRecord:
        task = TaskRecord(
            uuid.uuid4().hex, kind, "queued", payload, None, 0.0, time.time(), time.time()
        )
        await self._exec(
            "INSERT INTO tasks (id, kind, status, payload, created_at, updated_at) "
            "VALUES (?,?,?,?,?,?)",
            (task.id, kind, task.status, codec.dump(payload), task.created_at, task.updated_at),
        )
        return task

    async def get_task(self, task_id: str) -> TaskRecord | None:
        def q(c: Conn) -> TaskRecord | None:
            r = c.execute(
                "SELECT id, kind, status, payload, result, progress, created_at, updated_at "
                "FROM tasks WHERE id=?",
                (task_id,),
            ).fetchone()
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


TITLE_CHARS = 80


def _fold(text: str | None) -> str | None:
    return text.casefold() if isinstance(text, str) else text


def _title(text: str) -> str:
    """The first line of what the user said, cut at ``TITLE_CHARS``."""
    line = " ".join(text.strip().split())
    return line if len(line) <= TITLE_CHARS else line[: TITLE_CHARS - 1].rstrip() + "…"


def _astuple(record: SessionRecord) -> tuple[Any, ...]:
    return (
        record.id,
        record.user_id,
        record.channel,
        record.chat_id,
        record.title,
        record.created_at,
        record.updated_at,
    )
