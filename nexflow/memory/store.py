"""The SQLite index over memory files: items, FTS5 (BM25) and sqlite-vec KNN.

Its own database file (``memory.path``, default ``<home>/memory.db``) opened with
``pysqlite3`` when installed, because the standard library's ``sqlite3`` of many Pythons
cannot load extensions. Without sqlite-vec the index still works, keyword-only.

Synchronous by design: :class:`~nexflow.memory.service.MemoryService` calls it from one
dedicated thread, never from the event loop.
"""

from __future__ import annotations

import re
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import structlog

from nexflow.memory.notes import Chunk
from nexflow.memory.pages import PageIndex
from nexflow.memory.vecblob import float32_blob

log = structlog.get_logger("nexflow.memory")

RRF_K = 60
# The KNN is two-stage: a Hamming search over sign bits finds this many times the wanted
# candidates, then exact cosine distance on the float vectors ranks them. Bits are 32x
# smaller than floats; at 100k items this is the difference between ~35 ms and ~5 ms.
OVERSAMPLE = 3
_WORD = re.compile(r"\w+")
_STOPWORDS = frozenset(
    [
        "a",
        "an",
        "and",
        "are",
        "as",
        "at",
        "be",
        "by",
        "did",
        "do",
        "does",
        "for",
        "from",
        "has",
        "have",
        "how",
        "i",
        "in",
        "is",
        "it",
        "me",
        "my",
        "of",
        "on",
        "or",
        "our",
        "so",
        "that",
        "the",
        "their",
        "them",
        "they",
        "this",
        "to",
        "was",
        "we",
        "what",
        "when",
        "where",
        "which",
        "who",
        "why",
        "will",
        "with",
        "you",
        "your",
    ]
)

_SCHEMA = """
CREATE TABLE IF NOT EXISTS items(
    id INTEGER PRIMARY KEY,
    user_id TEXT NOT NULL,
    path TEXT NOT NULL,
    text TEXT NOT NULL,
    tags TEXT NOT NULL DEFAULT '',
    digest TEXT NOT NULL,
    created_at REAL NOT NULL,
    embedded INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX IF NOT EXISTS items_by_file ON items(user_id, path);
CREATE INDEX IF NOT EXISTS items_to_embed ON items(user_id, embedded);
CREATE VIRTUAL TABLE IF NOT EXISTS items_fts
    USING fts5(text, tags, owner, tokenize='porter unicode61');
CREATE TABLE IF NOT EXISTS files(
    user_id TEXT NOT NULL, path TEXT NOT NULL, mtime_ns INTEGER NOT NULL, size INTEGER NOT NULL,
    PRIMARY KEY(user_id, path)
);
CREATE TABLE IF NOT EXISTS meta(key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS item_vectors(id INTEGER PRIMARY KEY, embedding BLOB NOT NULL);
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


def _vec_extension() -> str:
    """The path of sqlite-vec's loadable extension, found without importing the package:
    ``import sqlite_vec`` imports numpy (~15 MB of RSS) for helpers Nexflow does not use."""
    import importlib.util

    spec = importlib.util.find_spec("sqlite_vec")
    if spec is None or spec.origin is None:
        raise ImportError("the sqlite-vec package is not installed")
    return str(Path(spec.origin).with_name("vec0"))


class MemoryIndex:
    def __init__(self, path: Path) -> None:
        self.path = path
        self.vector_error: str | None = None
        self._driver = _driver()
        path.parent.mkdir(parents=True, exist_ok=True)
        self._db: Any = self._driver.connect(
            str(path), check_same_thread=False, isolation_level=None
        )
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=NORMAL")
        self._load_vec()
        self._db.executescript(_SCHEMA)
        self.pages = PageIndex(self._db, self.vector_error is None)

    def _load_vec(self) -> None:
        try:
            self._db.enable_load_extension(True)
            self._db.load_extension(_vec_extension())
            self._db.enable_load_extension(False)
        except (ImportError, AttributeError, self._driver.Error) as exc:
            log.warning("sqlite_vec_unavailable", error=repr(exc))
            self.vector_error = "sqlite-vec could not be loaded (see `nexflow doctor`)"

    @property
    def vectors(self) -> bool:
        return self.vector_error is None

    def close(self) -> None:
        self._db.close()

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
                    "INSERT INTO items(user_id, path, text, tags, digest, created_at) "
                    "VALUES (?, ?, ?, ?, ?, ?)",
                    (user_id, path, chunk.text, " ".join(chunk.tags), chunk.digest, now),
                )
                item_id = int(cur.lastrowid)
                self._db.execute(
                    "INSERT INTO items_fts(rowid, text, tags, owner) VALUES (?, ?, ?, ?)",
                    (item_id, chunk.text, " ".join(chunk.tags), _owner_token(user_id)),
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
        self._db.execute("DELETE FROM item_vectors WHERE id=?", (item_id,))
        if self.vectors and self._has_vec_table():
            self._db.execute("DELETE FROM items_vec WHERE rowid=?", (item_id,))

    # -- vectors -------------------------------------------------------------------------

    def _has_vec_table(self) -> bool:
        row = self._db.execute("SELECT 1 FROM sqlite_master WHERE name='items_vec'").fetchone()
        return row is not None

    def vector_model(self) -> tuple[str, int] | None:
        rows = dict(self._db.execute("SELECT key, value FROM meta WHERE key LIKE 'vec_%'"))
        if "vec_model" not in rows or not self._has_vec_table():
            return None
        return rows["vec_model"], int(rows["vec_dims"])

    def ensure_vectors(self, model: str, dims: int) -> None:
        """Create the vector table; a different model or width re-embeds everything."""
        if self.vector_model() == (model, dims):
            return
        self._db.execute("BEGIN IMMEDIATE")
        try:
            self._db.execute("DROP TABLE IF EXISTS items_vec")
            self._db.execute("DELETE FROM item_vectors")
            self._db.execute(
                "CREATE VIRTUAL TABLE items_vec USING vec0(user_id text partition key, "
                f"embedding bit[{_bits(dims)}])"
            )
            self._db.execute("UPDATE items SET embedded=0")
            self._db.executemany(
                "INSERT OR REPLACE INTO meta(key, value) VALUES (?, ?)",
                [("vec_model", model), ("vec_dims", str(dims))],
            )
            self._db.execute("COMMIT")
        except BaseException:
            self._db.execute("ROLLBACK")
            raise
        log.info("memory_vectors_reset", model=model, dimensions=dims)

    def unembedded(self, user_id: str, limit: int) -> list[tuple[int, str]]:
        return [
            (int(r[0]), str(r[1]))
            for r in self._db.execute(
                "SELECT id, text FROM items WHERE user_id=? AND embedded=0 ORDER BY id LIMIT ?",
                (user_id, limit),
            )
        ]

    def store_vectors(self, user_id: str, rows: Sequence[tuple[int, list[float]]]) -> None:
        self._db.execute("BEGIN IMMEDIATE")
        try:
            for item_id, vector in rows:
                if self._db.execute("SELECT 1 FROM items WHERE id=?", (item_id,)).fetchone():
                    blob = float32_blob(vector)
                    self._db.execute("DELETE FROM items_vec WHERE rowid=?", (item_id,))
                    self._db.execute(
                        "INSERT INTO items_vec(rowid, user_id, embedding) "
                        "VALUES (?, ?, vec_quantize_binary(?))",
                        (item_id, user_id, _padded(vector)),
                    )
                    self._db.execute(
                        "INSERT OR REPLACE INTO item_vectors(id, embedding) VALUES (?, ?)",
                        (item_id, blob),
                    )
                    self._db.execute("UPDATE items SET embedded=1 WHERE id=?", (item_id,))
            self._db.execute("COMMIT")
        except BaseException:
            self._db.execute("ROLLBACK")
            raise

    # -- reading -------------------------------------------------------------------------

    def get(self, user_id: str, item_id: int) -> Item | None:
        row = self._db.execute(
            "SELECT id, user_id, path, text, tags, created_at FROM items WHERE id=? AND user_id=?",
            (item_id, user_id),
        ).fetchone()
        return _item(row) if row else None

    def find(self, user_id: str, path: str, digest: str) -> Item | None:
        """The newest item of ``path`` with this content digest."""
        row = self._db.execute(
            "SELECT id, user_id, path, text, tags, created_at FROM items "
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
        vector = self._knn(user_id, query_vector, depth) if query_vector is not None else []
        scores: dict[int, float] = {}
        for ranked in (keyword, vector):
            for rank, item_id in enumerate(ranked):
                scores[item_id] = scores.get(item_id, 0.0) + 1.0 / (RRF_K + rank + 1)
        best = sorted(scores, key=lambda i: -scores[i])[:k]
        if not best:
            return []
        marks = ",".join("?" * len(best))
        rows = self._db.execute(
            f"SELECT id, user_id, path, text, tags, created_at FROM items WHERE id IN ({marks})",
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
        match = f'owner:"{_owner_token(user_id)}" AND ({terms})'
        # Weights: text, tags, owner (the owner column only filters).
        return [
            int(r[0])
            for r in self._db.execute(
                "SELECT rowid FROM items_fts WHERE items_fts MATCH ? "
                "ORDER BY bm25(items_fts, 1.0, 0.5, 0.0) LIMIT ?",
                (match, limit),
            )
        ]

    def _knn(self, user_id: str, vector: list[float], limit: int) -> list[int]:
        if not self.vectors or self.vector_model() is None:
            return []
        return [
            int(r[0])
            for r in self._db.execute(
                "WITH coarse AS (SELECT rowid FROM items_vec "
                "WHERE embedding MATCH vec_quantize_binary(?) AND k = ? AND user_id = ?) "
                "SELECT v.id FROM item_vectors v JOIN coarse ON v.id = coarse.rowid "
                "ORDER BY vec_distance_cosine(v.embedding, ?) LIMIT ?",
                (
                    _padded(vector),
                    OVERSAMPLE * limit,
                    user_id,
                    float32_blob(vector),
                    limit,
                ),
            )
        ]


def keyword_terms(query: str) -> str | None:
    """The query's words minus stop words, OR-ed for an FTS5 MATCH (None: no words)."""
    words = [w for w in _WORD.findall(query.lower()) if w not in _STOPWORDS]
    if not words:
        return None
    return " OR ".join(f'"{w}"' for w in dict.fromkeys(words))


def _bits(dims: int) -> int:
    return -(-dims // 8) * 8


def _padded(vector: list[float]) -> bytes:
    """The vector padded with zeros to a whole number of bytes, for the sign-bit index."""
    blob: bytes = float32_blob(vector + [0.0] * (_bits(len(vector)) - len(vector)))
    return blob


def _owner_token(user_id: str) -> str:
    """The user id as one FTS token (ids are hex, but be safe with anything)."""
    return "u" + user_id.encode().hex()


def _item(row: Sequence[Any]) -> Item:
    return Item(
        id=int(row[0]),
        user_id=str(row[1]),
        path=str(row[2]),
        text=str(row[3]),
        tags=tuple(str(row[4]).split()),
        created_at=float(row[5]),
    )
