"""The SQLite index over memory files: items, FTS5 (BM25), fused with the vector KNN.

Its own database file (``memory.path``, default ``<home>/memory.db``) opened with
``pysqlite3`` when installed, because the standard library's ``sqlite3`` of many Pythons
cannot load extensions. Without sqlite-vec the index still works, keyword-only. The
vector tables are :mod:`~nexflow.memory.item_vectors` (``index.vec``), the context pages
:mod:`~nexflow.memory.pages` (``index.pages``); all three share the connection.

Synchronous by design: :class:`~nexflow.memory.service.MemoryService` calls it from one
dedicated thread, never from the event loop.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from nexflow.memory.item_vectors import ItemVectors, load_sqlite_vec
from nexflow.memory.keywords import keyword_terms, owner_token
from nexflow.memory.notes import Chunk
from nexflow.memory.pages import PageIndex

RRF_K = 60


def fuse(lists: Sequence[Sequence[int]], k: int) -> dict[int, float]:
    """Reciprocal rank fusion: ``Σ 1/(RRF_K + rank)`` over the ranked lists; the best
    ``k`` ids with their scores, best first."""
    scores: dict[int, float] = {}
    for ranked in lists:
        for rank, item_id in enumerate(ranked):
            scores[item_id] = scores.get(item_id, 0.0) + 1.0 / (RRF_K + rank + 1)
    return {i: scores[i] for i in sorted(scores, key=lambda i: -scores[i])[:k]}


_COLUMNS = "id, user_id, path, text, tags, created_at, tainted"  # the fields of an Item

_SCHEMA = """
CREATE TABLE IF NOT EXISTS items(
    id INTEGER PRIMARY KEY,
    user_id TEXT NOT NULL,
    path TEXT NOT NULL,
    text TEXT NOT NULL,
    tags TEXT NOT NULL DEFAULT '',
    digest TEXT NOT NULL,
    created_at REAL NOT NULL,
    embedded INTEGER NOT NULL DEFAULT 0,
    tainted TEXT NOT NULL DEFAULT ''
);
CREATE INDEX IF NOT EXISTS items_by_file ON items(user_id, path);
CREATE INDEX IF NOT EXISTS items_to_embed ON items(user_id, embedded);
CREATE VIRTUAL TABLE IF NOT EXISTS items_fts
    USING fts5(text, tags, owner, tokenize='porter unicode61');
CREATE TABLE IF NOT EXISTS files(
    user_id TEXT NOT NULL, path TEXT NOT NULL, mtime_ns INTEGER NOT NULL, size INTEGER NOT NULL,
    PRIMARY KEY(user_id, path)
);
"""


@dataclass(frozen=True, slots=True)
class Item:
    """One memory item: a chunk of one of the user's Markdown files."""

    id: int
    user_id: str
    path: str
    text: str
    tags: tuple[str, ...]
    created_at: float
    # Where untrusted content came from when it was written (the note's taint mark).
    tainted: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class Hit:
    item: Item
    score: float
    keyword_rank: int | None
    vector_rank: int | None


def _driver() -> Any:
    try:
        import pysqlite3.dbapi2 as driver  # a SQLite build that can load extensions
    except ImportError:
        import sqlite3 as driver
    return driver


def vector_support() -> str | None:
    """Why vector search cannot work in this installation, or None when it can."""
    index = MemoryIndex(Path(":memory:"))
    try:
        return index.vector_error
    finally:
        index.close()


class MemoryIndex:
    def __init__(self, path: Path) -> None:
        self.path = path
        self._driver = _driver()
        path.parent.mkdir(parents=True, exist_ok=True)
        self._db: Any = self._driver.connect(
            str(path), check_same_thread=False, isolation_level=None
        )
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=NORMAL")
        self.vector_error: str | None = load_sqlite_vec(self._db, self._driver)
        self._db.executescript(_SCHEMA)
        self._add_taint_column()
        self.vec = ItemVectors(self._db, self.vector_error is None)
        self.pages = PageIndex(self._db, self.vector_error is None)

    @property
    def vectors(self) -> bool:
        return self.vector_error is None

    def close(self) -> None:
        self._db.close()

    def _add_taint_column(self) -> None:
        """Indexes made before taint marks existed get the column; their items are clean."""
        columns = {row[1] for row in self._db.execute("PRAGMA table_info(items)")}
        if "tainted" not in columns:
            self._db.execute("ALTER TABLE items ADD COLUMN tainted TEXT NOT NULL DEFAULT ''")

    # -- files -> items ------------------------------------------------------------------

    def stale_files(
        self, user_id: str, files: dict[str, tuple[int, int]]
    ) -> tuple[list[str], list[str]]:
        """``files`` maps relative path -> (mtime_ns, size). Returns (changed, removed)."""
        known = {
            row[0]: (row[1], row[2])
            for row in self._db.execute(
                "SELECT path, mtime_ns, size FROM files WHERE user_id=?", (user_id,)
            )
        }
        changed = [p for p, stamp in files.items() if known.get(p) != stamp]
        removed = [p for p in known if p not in files]
        return changed, removed

    def index_file(
        self, user_id: str, path: str, chunks: Sequence[Chunk], stamp: tuple[int, int] | None
    ) -> list[int]:
        """Make the items of ``path`` match ``chunks``; unchanged chunks keep their ids.

        ``stamp`` None removes the file. Returns the ids of the chunks, in order.
        """
        old: dict[str, list[int]] = {}
        for item_id, digest in self._db.execute(
            "SELECT id, digest FROM items WHERE user_id=? AND path=? ORDER BY id", (user_id, path)
        ):
            old.setdefault(digest, []).append(item_id)
        ids: list[int] = []
        now = time.time()
        self._db.execute("BEGIN IMMEDIATE")
        try:
            for chunk in chunks:
                reuse = old.get(chunk.digest)
                if reuse:
                    ids.append(reuse.pop(0))
                    continue
                cur = self._db.execute(
                    "INSERT INTO items(user_id, path, text, tags, digest, created_at, tainted) "
                    "VALUES (?, ?, ?, ?, ?, ?, ?)",
                    (
                        user_id,
                        path,
                        chunk.text,
                        " ".join(chunk.tags),
                        chunk.digest,
                        now,
                        " ".join(chunk.tainted),
                    ),
                )
                item_id = int(cur.lastrowid)
                self._db.execute(
                    "INSERT INTO items_fts(rowid, text, tags, owner) VALUES (?, ?, ?, ?)",
                    (item_id, chunk.text, " ".join(chunk.tags), owner_token(user_id)),
                )
                ids.append(item_id)
            for gone in (i for group in old.values() for i in group):
                self._delete(gone)
            if stamp is None:
                self._db.execute("DELETE FROM files WHERE user_id=? AND path=?", (user_id, path))
            else:
                self._db.execute(
                    "INSERT INTO files(user_id, path, mtime_ns, size) VALUES (?, ?, ?, ?) "
                    "ON CONFLICT(user_id, path) DO UPDATE SET mtime_ns=excluded.mtime_ns, "
                    "size=excluded.size",
                    (user_id, path, *stamp),
                )
            self._db.execute("COMMIT")
        except BaseException:
            self._db.execute("ROLLBACK")
            raise
        return ids

    def _delete(self, item_id: int) -> None:
        self._db.execute("DELETE FROM items WHERE id=?", (item_id,))
        self._db.execute("DELETE FROM items_fts WHERE rowid=?", (item_id,))
        self.vec.delete(item_id)

    # -- reading -------------------------------------------------------------------------

    def get(self, user_id: str, item_id: int) -> Item | None:
        row = self._db.execute(
            f"SELECT {_COLUMNS} FROM items WHERE id=? AND user_id=?",
            (item_id, user_id),
        ).fetchone()
        return _item(row) if row else None

    def find(self, user_id: str, path: str, digest: str) -> Item | None:
        """The newest item of ``path`` with this content digest."""
        row = self._db.execute(
            f"SELECT {_COLUMNS} FROM items "
            "WHERE user_id=? AND path=? AND digest=? ORDER BY id DESC LIMIT 1",
            (user_id, path, digest),
        ).fetchone()
        return _item(row) if row else None

    def count(self, user_id: str | None = None) -> int:
        if user_id is None:
            return int(self._db.execute("SELECT COUNT(*) FROM items").fetchone()[0])
        sql = "SELECT COUNT(*) FROM items WHERE user_id=?"
        return int(self._db.execute(sql, (user_id,)).fetchone()[0])

    def search(
        self, user_id: str, query: str, k: int, query_vector: list[float] | None
    ) -> list[Hit]:
        """BM25 and KNN candidates for one user, fused by reciprocal rank."""
        depth = max(4 * k, 20)
        keyword = self._keyword(user_id, query, depth)
        vector = self.vec.knn(user_id, query_vector, depth) if query_vector is not None else []
        scores = fuse((keyword, vector), k)
        best = list(scores)
        if not best:
            return []
        marks = ",".join("?" * len(best))
        rows = self._db.execute(
            f"SELECT {_COLUMNS} FROM items WHERE id IN ({marks})",
            best,
        ).fetchall()
        items = {row[0]: _item(row) for row in rows}
        return [
            Hit(
                items[i],
                scores[i],
                keyword.index(i) + 1 if i in keyword else None,
                vector.index(i) + 1 if i in vector else None,
            )
            for i in best
            if i in items
        ]

    def _keyword(self, user_id: str, query: str, limit: int) -> list[int]:
        terms = keyword_terms(query)
        if terms is None:
            return []
        match = f'owner:"{owner_token(user_id)}" AND ({terms})'
        # Weights: text, tags, owner (the owner column only filters).
        return [
            int(r[0])
            for r in self._db.execute(
                "SELECT rowid FROM items_fts WHERE items_fts MATCH ? "
                "ORDER BY bm25(items_fts, 1.0, 0.5, 0.0) LIMIT ?",
                (match, limit),
            )
        ]


def _item(row: Sequence[Any]) -> Item:
    return Item(
        id=int(row[0]),
        user_id=str(row[1]),
        path=str(row[2]),
        text=str(row[3]),
        tags=tuple(str(row[4]).split()),
        created_at=float(row[5]),
        tainted=tuple(str(row[6]).split()),
    )
