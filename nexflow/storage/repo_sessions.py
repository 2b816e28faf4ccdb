"""Sessions and their message history (SQLite and Postgres): the :class:`~nexflow.storage.
base.Sessions` aggregate, mixed into ``SQLStorage``.

A session's messages are written by the transaction that ends a turn
(:meth:`~nexflow.storage.repo_queue.QueueRepo.complete`), never here: this repository
creates sessions and reads what they hold.
"""

from __future__ import annotations

import time
import uuid

from nexflow.storage.base import MessageRecord, SessionRecord, SessionSummary
from nexflow.storage.connection import MESSAGE_COLS, SQLConnection, message_row, select_history
from nexflow.storage.dialect import json_text
from nexflow.storage.engine import Conn, SQLiteConn
from nexflow.storage.repo_turns import _SESSION_COLS, session_row

TITLE_CHARS = 80


class SessionRepo(SQLConnection):
    """Session and history operations of :class:`~nexflow.storage.sql_storage.SQLStorage`."""

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
                f"INSERT INTO sessions ({_SESSION_COLS}) VALUES (?,?,?,?,?,?,?)",
                (
                    record.id,
                    record.user_id,
                    record.channel,
                    record.chat_id,
                    record.title,
                    record.created_at,
                    record.updated_at,
                ),
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


def _fold(text: str | None) -> str | None:
    return text.casefold() if isinstance(text, str) else text


def _title(text: str) -> str:
    """The first line of what the user said, cut at ``TITLE_CHARS``."""
    line = " ".join(text.strip().split())
    return line if len(line) <= TITLE_CHARS else line[: TITLE_CHARS - 1].rstrip() + "…"
