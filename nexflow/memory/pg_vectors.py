"""The vector half of the Postgres memory index: item vectors and their exact ranking.

``memory_item_vectors`` keeps each item's vector as ``BYTEA`` (little-endian float32, the
bytes of :mod:`~nexflow.memory.vecblob`); ``memory_meta`` the model, the width and which
store holds the vectors (``vec_store``: ``bytea`` here, ``pgvector`` for
:mod:`~nexflow.memory.pg_hnsw`); a change of any re-embeds everything, as on SQLite. The
KNN fetches the user's vectors and ranks them by cosine similarity in this process:
exact, and nothing needed from the server. It is the path for a server without pgvector.
numpy does it when installed (the local embedder brings it); without it, pure Python;
the figures are at :data:`~nexflow.memory.pg_store.EXACT_LIMIT`.
"""

from __future__ import annotations

import sys
from array import array
from collections.abc import Sequence
from math import sqrt
from operator import mul
from typing import TYPE_CHECKING, Any

import structlog

from nexflow.memory.vecblob import float32_blob
from nexflow.storage.engine import PostgresConn, to_pyformat

if TYPE_CHECKING:
    from nexflow.memory.pg_store import PgMemoryIndex

log = structlog.get_logger("nexflow.memory")


class PgItemVectors:
    """Item vectors in ``memory_item_vectors``; the model and width in ``memory_meta``."""

    kind = "bytea"  # memory_meta's vec_store: which table holds the vectors

    def __init__(self, index: PgMemoryIndex) -> None:
        self._index = index

    def model(self) -> tuple[str, int] | None:
        """The model and width the vectors were made with (None: no vectors yet)."""
        with self._index.read() as db:
            state = self._state(db)
        return None if state is None else (state[0], state[1])

    def _state(self, db: PostgresConn) -> tuple[str, int, str] | None:
        """(model, width, store) from ``memory_meta``; an index from before pgvector
        support has no ``vec_store``: its vectors are ``bytea``."""
        rows = db.execute(
            "SELECT key, value FROM memory_meta WHERE key IN ('vec_model', 'vec_dims', 'vec_store')"
        ).fetchall()
        meta = {r["key"]: r["value"] for r in rows}
        if "vec_model" not in meta or "vec_dims" not in meta:
            return None
        return str(meta["vec_model"]), int(meta["vec_dims"]), str(meta.get("vec_store", "bytea"))

    def ensure(self, model: str, dims: int) -> None:
        """Record the model; a different model, width or store re-embeds everything."""
        wanted = (model, dims, self.kind)
        with self._index.read() as db:
            if self._state(db) == wanted:
                return
        with self._index.transaction("") as db:  # the empty user id: the lock for the model
            if self._state(db) == wanted:
                return  # another process made the change meanwhile
            self._reset(db, dims)
            db.executemany(
                "INSERT INTO memory_meta(key, value) VALUES (?, ?) "
                "ON CONFLICT(key) DO UPDATE SET value=excluded.value",
                [("vec_model", model), ("vec_dims", str(dims)), ("vec_store", self.kind)],
            )
        log.info("memory_vectors_reset", model=model, dimensions=dims, store=self.kind)

    def _reset(self, db: PostgresConn, dims: int) -> None:
        """Forget every vector, in both stores, so all items are embedded again."""
        db.execute("DROP TABLE IF EXISTS memory_item_embeddings")
        db.execute("DELETE FROM memory_item_vectors")
        db.execute("UPDATE memory_items SET embedded=0")

    def unembedded(self, user_id: str, limit: int) -> list[tuple[int, str]]:
        """The user's items without a vector yet: (id, text), oldest first."""
        with self._index.read() as db:
            rows = db.execute(
                "SELECT id, text FROM memory_items WHERE user_id=? AND embedded=0 "
                "ORDER BY id LIMIT ?",
                (user_id, limit),
            ).fetchall()
        return [(int(r["id"]), str(r["text"])) for r in rows]

    def store(self, user_id: str, rows: Sequence[tuple[int, list[float]]]) -> None:
        """Store the vectors of items that still exist, and mark them embedded."""
        if not rows:
            return
        with self._index.transaction(user_id) as db:
            db.executemany(
                "INSERT INTO memory_item_vectors(id, user_id, embedding) "
                "SELECT id, user_id, ? FROM memory_items WHERE id=? AND user_id=? "
                "ON CONFLICT(id) DO UPDATE SET embedding=excluded.embedding",
                [(float32_blob(vector), item_id, user_id) for item_id, vector in rows],
            )
            db.execute(
                "UPDATE memory_items SET embedded=1 WHERE id = ANY(?) AND user_id=?",
                ([item_id for item_id, _ in rows], user_id),
            )

    def count(self, user_id: str) -> int:
        with self._index.read() as db:
            row = db.execute(
                "SELECT COUNT(*) AS n FROM memory_item_vectors WHERE user_id=?", (user_id,)
            ).fetchone()
        return int(row["n"])

    def knn(self, user_id: str, vector: list[float], limit: int) -> list[int]:
        """The ids of the user's ``limit`` items nearest ``vector``, nearest first."""
        with self._index.read() as db:
            found = fetch_vectors(
                db,
                "SELECT id, embedding FROM memory_item_vectors WHERE user_id=?",
                (user_id,),
            )
        return [item_id for item_id, _ in cosine_similarities(vector, found, limit)]


def fetch_vectors(db: PostgresConn, sql: str, args: Sequence[Any]) -> list[tuple[int, bytes]]:
    """``sql``'s rows of (id, vector bytes), read in binary: ``bytea`` as text is hex, twice
    the bytes and a decode (20,000 vectors of 384 floats: 107 ms instead of 350 ms)."""
    rows = db.raw.execute(to_pyformat(sql), list(args), binary=True).fetchall()
    return [(int(r[0]), bytes(r[1])) for r in rows]


def cosine_similarities(
    query: Sequence[float], rows: Sequence[tuple[int, bytes]], limit: int
) -> list[tuple[int, float]]:
    """The ``limit`` rows (id, float32 bytes) most similar to ``query``, as (id, cosine
    similarity), best first (ties: the lower id); rows of another width are skipped.
    numpy when installed (the local embedder brings it), else pure Python."""
    width = 4 * len(query)
    rows = [r for r in rows if len(r[1]) == width]
    if not rows:
        return []
    try:
        import numpy as np
    except ImportError:
        return _python_similarities(query, rows, limit)
    matrix = np.frombuffer(b"".join(blob for _, blob in rows), dtype="<f4").reshape(
        len(rows), len(query)
    )
    q = np.asarray(query, dtype=np.float32)
    norms = np.sqrt(np.einsum("ij,ij->i", matrix, matrix)) * np.linalg.norm(q)
    sims = (matrix @ q) / np.where(norms == 0, 1.0, norms)
    top = np.argpartition(-sims, limit - 1)[:limit] if limit < len(rows) else np.arange(len(rows))
    order = sorted(top.tolist(), key=lambda i: (-sims[i], rows[i][0]))
    return [(rows[i][0], float(sims[i])) for i in order]


def _python_similarities(
    query: Sequence[float], rows: Sequence[tuple[int, bytes]], limit: int
) -> list[tuple[int, float]]:
    q = array("f", query)
    q_norm = sqrt(sum(map(mul, q, q)))
    sims: list[tuple[float, int, int]] = []
    for position, (row_id, blob) in enumerate(rows):
        v = array("f")
        v.frombytes(blob)
        if sys.byteorder == "big":  # the bytes are little-endian
            v.byteswap()
        norm = sqrt(sum(map(mul, v, v))) * q_norm
        sims.append((-(sum(map(mul, q, v)) / norm) if norm else 0.0, row_id, position))
    sims.sort()
    return [(row_id, -sim) for sim, row_id, _ in sims[:limit]]
