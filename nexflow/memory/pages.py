"""Context pages in the memory index: paged-out stretches of a session's history.

A page names a range of the session's message ids; the messages themselves stay in the
gateway's database and are never deleted. The page row keeps what paging needs: the
summary, the facts flushed to long-term memory, the flush state, an FTS row (summary and
a transcript excerpt) and a vector. Synchronous, like :class:`~nexflow.memory.store.MemoryIndex`
whose connection it shares: :class:`~nexflow.memory.service.MemoryService` calls it from
its database thread.
"""

from __future__ import annotations

import json
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal

from nexflow.memory.vecblob import float32_blob

PAGES_SCHEMA = """
CREATE TABLE IF NOT EXISTS pages(
    id INTEGER PRIMARY KEY,
    user_id TEXT NOT NULL,
    session_id TEXT NOT NULL,
    first_msg_id INTEGER NOT NULL,
    last_msg_id INTEGER NOT NULL,
    messages INTEGER NOT NULL,
    tokens INTEGER NOT NULL,
    summary TEXT NOT NULL,
    summary_by TEXT NOT NULL,
    facts TEXT NOT NULL DEFAULT '[]',
    state TEXT NOT NULL,
    flushed INTEGER NOT NULL DEFAULT 0,
    flush_attempts INTEGER NOT NULL DEFAULT 0,
    created_at REAL NOT NULL,
    started_at REAL NOT NULL,
    ended_at REAL NOT NULL,
    restored INTEGER NOT NULL DEFAULT 0,
    UNIQUE(session_id, first_msg_id)
);
CREATE INDEX IF NOT EXISTS pages_by_session ON pages(session_id, state, last_msg_id);
CREATE INDEX IF NOT EXISTS pages_to_flush ON pages(user_id, flushed, state);
CREATE VIRTUAL TABLE IF NOT EXISTS pages_fts
    USING fts5(summary, body, owner, tokenize='porter unicode61');
CREATE TABLE IF NOT EXISTS page_vectors(
    page_id INTEGER PRIMARY KEY, model TEXT NOT NULL, dims INTEGER NOT NULL,
    embedding BLOB NOT NULL
);
"""

SummaryBy = Literal["llm", "fallback"]


@dataclass(frozen=True, slots=True)
class Page:
    """One paged-out stretch of a session: messages ``first_msg_id..last_msg_id``."""

    id: int
    user_id: str
    session_id: str
    first_msg_id: int
    last_msg_id: int
    messages: int
    tokens: int
    summary: str
    summary_by: SummaryBy
    facts: tuple[str, ...]
    state: Literal["flushing", "out"]
    flushed: bool
    flush_attempts: int
    created_at: float
    started_at: float
    ended_at: float
    restored: int


@dataclass(frozen=True, slots=True)
class NewPage:
    user_id: str
    session_id: str
    first_msg_id: int
    last_msg_id: int
    messages: int
    tokens: int
    summary: str
    started_at: float
    ended_at: float


_COLS = (
    "id, user_id, session_id, first_msg_id, last_msg_id, messages, tokens, summary, "
    "summary_by, facts, state, flushed, flush_attempts, created_at, started_at, ended_at, "
    "restored"
)


def _page(row: Sequence[Any]) -> Page:
    return Page(
        id=int(row[0]),
        user_id=str(row[1]),
        session_id=str(row[2]),
        first_msg_id=int(row[3]),
        last_msg_id=int(row[4]),
        messages=int(row[5]),
        tokens=int(row[6]),
        summary=str(row[7]),
        summary_by="llm" if row[8] == "llm" else "fallback",
        facts=tuple(str(f) for f in json.loads(row[9] or "[]")),
        state="out" if row[10] == "out" else "flushing",
        flushed=bool(row[11]),
        flush_attempts=int(row[12]),
        created_at=float(row[13]),
        started_at=float(row[14]),
        ended_at=float(row[15]),
        restored=int(row[16]),
    )


def _session_token(session_id: str) -> str:
    return "s" + session_id.encode().hex()


class PageIndex:
    """Page rows over the memory index's connection (see the module docstring)."""

    def __init__(self, db: Any, vectors: bool) -> None:
        self._db = db
        self._vectors = vectors
        db.executescript(PAGES_SCHEMA)

    def _tx(self, *statements: tuple[str, Sequence[Any]]) -> None:
        self._db.execute("BEGIN IMMEDIATE")
        try:
            for sql, args in statements:
                self._db.execute(sql, args)
            self._db.execute("COMMIT")
        except BaseException:
            self._db.execute("ROLLBACK")
            raise

    def cut(self, session_id: str) -> int:
        """The last message id of the session that is paged out (0: none)."""
        row = self._db.execute(
            "SELECT MAX(last_msg_id) FROM pages WHERE session_id=? AND state='out'",
            (session_id,),
        ).fetchone()
        return int(row[0] or 0)

    def begin(self, page: NewPage) -> Page:
        """Reserve the page (state ``flushing``: its messages are not paged out yet).

        A page left ``flushing`` by a crash is taken over by the next attempt at the same
        first message, so its id (and the ``page-<id>`` tag of its facts) stays the same.
        """
        now = time.time()
        self._db.execute(
            "INSERT INTO pages(user_id, session_id, first_msg_id, last_msg_id, messages, "
            "tokens, summary, summary_by, state, created_at, started_at, ended_at) "
            "VALUES (?, ?, ?, ?, ?, ?, ?, 'fallback', 'flushing', ?, ?, ?) "
            "ON CONFLICT(session_id, first_msg_id) DO UPDATE SET "
            "last_msg_id=excluded.last_msg_id, messages=excluded.messages, "
            "tokens=excluded.tokens, summary=excluded.summary, ended_at=excluded.ended_at "
            "WHERE state='flushing'",
            (
                page.user_id,
                page.session_id,
                page.first_msg_id,
                page.last_msg_id,
                page.messages,
                page.tokens,
                page.summary,
                now,
                page.started_at,
                page.ended_at,
            ),
        )
        row = self._db.execute(
            f"SELECT {_COLS} FROM pages WHERE session_id=? AND first_msg_id=?",
            (page.session_id, page.first_msg_id),
        ).fetchone()
        return _page(row)

    def finish(
        self,
        page_id: int,
        summary: str,
        summary_by: SummaryBy,
        facts: Sequence[str],
        flushed: bool,
        failed_attempt: bool,
        body: str,
    ) -> Page:
        """Page the messages out (state ``out``) with their summary and flush outcome."""
        page = self.get(page_id)
        assert page is not None
        owner = _session_token(page.session_id)
        self._tx(
            (
                "UPDATE pages SET state='out', summary=?, summary_by=?, facts=?, flushed=?, "
                "flush_attempts=flush_attempts+? WHERE id=?",
                (
                    summary,
                    summary_by,
                    json.dumps(list(facts)),
                    int(flushed),
                    int(failed_attempt),
                    page_id,
                ),
            ),
            ("DELETE FROM pages_fts WHERE rowid=?", (page_id,)),
            (
                "INSERT INTO pages_fts(rowid, summary, body, owner) VALUES (?, ?, ?, ?)",
                (page_id, summary, body, owner),
            ),
        )
        done = self.get(page_id)
        assert done is not None
        return done

    def reflushed(
        self,
        page_id: int,
        summary: str,
        facts: Sequence[str],
        flushed: bool,
        failed_attempt: bool,
    ) -> None:
        """A later flush of a page paged out while the summarising model was down."""
        statements: list[tuple[str, Sequence[Any]]] = [
            (
                "UPDATE pages SET flushed=?, flush_attempts=flush_attempts+?, facts=? WHERE id=?",
                (int(flushed), int(failed_attempt), json.dumps(list(facts)), page_id),
            )
        ]
        if flushed:
            statements += [
                ("UPDATE pages SET summary=?, summary_by='llm' WHERE id=?", (summary, page_id)),
                ("UPDATE pages_fts SET summary=? WHERE rowid=?", (summary, page_id)),
                ("DELETE FROM page_vectors WHERE page_id=?", (page_id,)),
            ]
        self._tx(*statements)

    def get(self, page_id: int, user_id: str | None = None) -> Page | None:
        args: list[object]
        sql, args = f"SELECT {_COLS} FROM pages WHERE id=?", [page_id]
        if user_id is not None:
            sql, args = sql + " AND user_id=?", [page_id, user_id]
        row = self._db.execute(sql, args).fetchone()
        return _page(row) if row else None

    def of_session(self, session_id: str) -> list[Page]:
        rows = self._db.execute(
            f"SELECT {_COLS} FROM pages WHERE session_id=? AND state='out' ORDER BY first_msg_id",
            (session_id,),
        ).fetchall()
        return [_page(r) for r in rows]

    def to_flush(self, user_id: str, max_attempts: int, limit: int) -> list[Page]:
        rows = self._db.execute(
            f"SELECT {_COLS} FROM pages WHERE user_id=? AND flushed=0 AND state='out' "
            "AND flush_attempts<? ORDER BY id LIMIT ?",
            (user_id, max_attempts, limit),
        ).fetchall()
        return [_page(r) for r in rows]

    def unembedded(self, session_id: str, model: str, limit: int) -> list[tuple[int, str]]:
        """Pages of the session without a vector of ``model``: (id, summary + body)."""
        rows = self._db.execute(
            "SELECT p.id, p.summary, f.body FROM pages p JOIN pages_fts f ON f.rowid = p.id "
            "LEFT JOIN page_vectors v ON v.page_id = p.id AND v.model = ? "
            "WHERE p.session_id=? AND p.state='out' AND v.page_id IS NULL ORDER BY p.id LIMIT ?",
            (model, session_id, limit),
        ).fetchall()
        return [(int(r[0]), f"{r[1]}\n{r[2]}") for r in rows]

    def store_vectors(self, model: str, rows: Sequence[tuple[int, list[float]]]) -> None:
        self._tx(
            *(
                (
                    "INSERT OR REPLACE INTO page_vectors(page_id, model, dims, embedding) "
                    "VALUES (?, ?, ?, ?)",
                    (page_id, model, len(vector), float32_blob(vector)),
                )
                for page_id, vector in rows
            )
        )

    def mark_restored(self, page_ids: Sequence[int]) -> None:
        if page_ids:
            marks = ",".join("?" * len(page_ids))
            self._db.execute(
                f"UPDATE pages SET restored=restored+1 WHERE id IN ({marks})", list(page_ids)
            )

    def search(
        self,
        session_id: str,
        terms: str | None,
        vector: list[float] | None,
        model: str | None,
        min_similarity: float,
        limit: int,
    ) -> list[int]:
        """Paged-out pages of the session relevant to a message, best first.

        A page qualifies by a keyword hit (``terms``: an FTS5 OR-query) or by a cosine
        similarity of at least ``min_similarity``; the two rankings are fused by
        reciprocal rank, as memory search does.
        """
        keyword: list[int] = []
        if terms:
            keyword = [
                int(r[0])
                for r in self._db.execute(
                    "SELECT f.rowid FROM pages_fts f JOIN pages p ON p.id = f.rowid "
                    "WHERE pages_fts MATCH ? AND p.state='out' "
                    "ORDER BY bm25(pages_fts, 1.0, 1.0, 0.0) LIMIT ?",
                    (f'owner:"{_session_token(session_id)}" AND ({terms})', 4 * limit),
                )
            ]
        similar: list[int] = []
        if vector is not None and model is not None and self._vectors:
            similar = [
                int(r[0])
                for r in self._db.execute(
                    "SELECT p.id, 1.0 - vec_distance_cosine(v.embedding, ?) AS sim "
                    "FROM pages p JOIN page_vectors v ON v.page_id = p.id "
                    "WHERE p.session_id=? AND p.state='out' AND v.model=? AND v.dims=? "
                    "AND sim >= ? ORDER BY sim DESC LIMIT ?",
                    (
                        float32_blob(vector),
                        session_id,
                        model,
                        len(vector),
                        min_similarity,
                        4 * limit,
                    ),
                )
            ]
        scores: dict[int, float] = {}
        for ranked in (keyword, similar):
            for rank, page_id in enumerate(ranked):
                scores[page_id] = scores.get(page_id, 0.0) + 1.0 / (60 + rank + 1)
        return sorted(scores, key=lambda i: -scores[i])[:limit]
