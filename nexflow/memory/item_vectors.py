"""The vector half of the memory index: sqlite-vec's extension, item vectors and the KNN.

Two tables over the index's connection: ``items_vec``, a sqlite-vec ``vec0`` of sign bits
(``vec_quantize_binary``) partitioned by user, made on the first embedding with the
model's width; and ``item_vectors``, the float vectors for exact re-ranking. The KNN is
two-stage: a Hamming search over the bits finds :data:`OVERSAMPLE` times the wanted
candidates, exact cosine distance on their floats ranks them. ``meta`` records the model
and width; a change re-embeds everything (lazily, through the items' ``embedded`` flag).

Synchronous, like :class:`~nexflow.memory.store.MemoryIndex`, whose connection and
database thread it shares.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import structlog

from nexflow.memory.vecblob import float32_blob

log = structlog.get_logger("nexflow.memory")

# Bits are 32x smaller than floats; at 100k items this is the difference between ~35 ms
# and ~5 ms for the KNN.
OVERSAMPLE = 3

VECTORS_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta(key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS item_vectors(id INTEGER PRIMARY KEY, embedding BLOB NOT NULL);
"""


def _vec_extension() -> str:
    """The path of sqlite-vec's loadable extension, found without importing the package:
    ``import sqlite_vec`` imports numpy (~15 MB of RSS) for helpers Nexflow does not use."""
    import importlib.util

    spec = importlib.util.find_spec("sqlite_vec")
    if spec is None or spec.origin is None:
        raise ImportError("the sqlite-vec package is not installed")
    return str(Path(spec.origin).with_name("vec0"))


def load_sqlite_vec(db: Any, driver: Any) -> str | None:
    """Load sqlite-vec into ``db``; returns why it could not be loaded, or None."""
    try:
        db.enable_load_extension(True)
        db.load_extension(_vec_extension())
        db.enable_load_extension(False)
    except (ImportError, AttributeError, driver.Error) as exc:
        log.warning("sqlite_vec_unavailable", error=repr(exc))
        return "sqlite-vec could not be loaded (see `nexflow doctor`)"
    return None


class ItemVectors:
    """Item vectors over the memory index's connection (see the module docstring).

    ``available`` is False when sqlite-vec could not be loaded: then only
    ``item_vectors`` exists and :meth:`knn` finds nothing.
    """

    def __init__(self, db: Any, available: bool) -> None:
        self._db = db
        self.available = available
        db.executescript(VECTORS_SCHEMA)

    def _has_table(self) -> bool:
        row = self._db.execute("SELECT 1 FROM sqlite_master WHERE name='items_vec'").fetchone()
        return row is not None

    def model(self) -> tuple[str, int] | None:
        """The model and width the vectors were made with (None: no vectors yet)."""
        rows = dict(self._db.execute("SELECT key, value FROM meta WHERE key LIKE 'vec_%'"))
        if "vec_model" not in rows or not self._has_table():
            return None
        return rows["vec_model"], int(rows["vec_dims"])

    def ensure(self, model: str, dims: int) -> None:
        """Create the vector table; a different model or width re-embeds everything."""
        if self.model() == (model, dims):
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
        """The user's items without a vector yet: (id, text), oldest first."""
        return [
            (int(r[0]), str(r[1]))
            for r in self._db.execute(
                "SELECT id, text FROM items WHERE user_id=? AND embedded=0 ORDER BY id LIMIT ?",
                (user_id, limit),
            )
        ]

    def store(self, user_id: str, rows: Sequence[tuple[int, list[float]]]) -> None:
        """Store the vectors of items that still exist, and mark them embedded."""
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

    def delete(self, item_id: int) -> None:
        """Drop an item's vectors (inside the caller's transaction)."""
        self._db.execute("DELETE FROM item_vectors WHERE id=?", (item_id,))
        if self.available and self._has_table():
            self._db.execute("DELETE FROM items_vec WHERE rowid=?", (item_id,))

    def knn(self, user_id: str, vector: list[float], limit: int) -> list[int]:
        """The ids of the user's ``limit`` items nearest ``vector``, nearest first."""
        if not self.available or self.model() is None:
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


def _bits(dims: int) -> int:
    return -(-dims // 8) * 8


def _padded(vector: list[float]) -> bytes:
    """The vector padded with zeros to a whole number of bytes, for the sign-bit index."""
    blob: bytes = float32_blob(vector + [0.0] * (_bits(len(vector)) - len(vector)))
    return blob
