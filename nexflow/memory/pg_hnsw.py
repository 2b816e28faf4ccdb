"""The vector half of the Postgres memory index when the server has pgvector.

At open, :func:`detect_pgvector` looks for the extension (``pg_extension``, then
``pg_available_extensions`` and ``CREATE EXTENSION IF NOT EXISTS vector``); a server
without it, or a role that may not create it (pgvector is not a trusted extension: a
superuser must), leaves the index on exact ranking (:mod:`~nexflow.memory.pg_vectors`)
and says why.

With pgvector, :class:`PgVectorItemVectors` keeps each item's vector in
``memory_item_embeddings.embedding``, a ``vector(<dims>)`` column with an HNSW index
for cosine distance. The table is made when the embedder's width is known (``ensure``);
a new model or width drops and remakes it and re-embeds everything, as on SQLite. Names
are qualified with the extension's schema, so a connection whose ``search_path`` does
not include it still finds the type and operator.

A search is scoped to one user, which an HNSW index knows nothing of:

- A user with fewer than :data:`HNSW_FROM` vectors is ranked exactly, by pgvector in the
  server, over a materialized scan of their rows (no index can answer it): a few
  milliseconds, and no walk of a graph made mostly of other users' items.
- Above it, the HNSW index with pgvector's iterative scan (0.8+, ``strict_order``), so
  the user filter does not leave fewer than ``limit`` rows; ``hnsw.ef_search`` is
  :data:`EF_SEARCH` or ``limit`` if larger; ``enable_sort`` is off for that query,
  else a planner without statistics on ``user_id`` prefers sorting the user's rows. If
  the scan still stops short (``hnsw.max_scan_tuples`` reached: the user is a tiny part
  of a huge table) the search falls back to exact ranking.

There is no per-user cap, unlike the exact path. Above :data:`HNSW_MAX_DIMS` (pgvector's
limit for an HNSW index on ``vector``) no index is built and every search is exact.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

import psycopg
import structlog

from nexflow.memory.pg_vectors import PgItemVectors
from nexflow.storage.engine import PostgresConn

if TYPE_CHECKING:
    from nexflow.memory.pg_store import PgMemoryIndex

log = structlog.get_logger("nexflow.memory")

# Below this many vectors a user is ranked exactly in the server (see the docstring).
# Measured (bench/pgvector_bench.py, 384 dimensions, 2 cores under load 3): exact in the
# server 5 ms at 2,000 vectors and 23 ms at 5,000; HNSW 2-10 ms at those sizes.
HNSW_FROM = 2_000
HNSW_MAX_DIMS = 2_000
# hnsw.ef_search (pgvector's default is 40), raised to the rows asked for if more.
# Measured at 100,000 text-like vectors (bench/pgvector_bench.py): recall@10 against
# exact 0.78 at 40 (3.8 ms), 0.93 at 100 (5.0 ms), 0.97 at 200 (9.2 ms).
EF_SEARCH = 200


def detect_pgvector(db: PostgresConn) -> tuple[str | None, str]:
    """(schema of the ``vector`` extension, its version) when usable, else (None, why not).

    Creates the extension when the server has it and this role may. Call under the
    schema lock: two processes creating it at once would collide.
    """
    found = _installed(db)
    if found is not None:
        return found
    available = db.execute(
        "SELECT default_version FROM pg_available_extensions WHERE name='vector'"
    ).fetchone()
    if available is None:
        return None, "the server has no pgvector"
    try:
        db.execute("CREATE EXTENSION IF NOT EXISTS vector")
    except psycopg.errors.InsufficientPrivilege:
        return None, (
            "pgvector is on the server but this role may not create the extension "
            "(a superuser can: CREATE EXTENSION vector)"
        )
    except psycopg.Error as exc:  # e.g. no schema in search_path to create it in
        log.warning("memory_pgvector_create_failed", exc_info=True)
        return None, f"CREATE EXTENSION vector failed (SQLSTATE {exc.sqlstate})"
    return _installed(db) or (None, "CREATE EXTENSION vector left no extension")


def _installed(db: PostgresConn) -> tuple[str, str] | None:
    row = db.execute(
        "SELECT n.nspname AS schema, e.extversion AS version FROM pg_extension e "
        "JOIN pg_namespace n ON n.oid = e.extnamespace WHERE e.extname='vector'"
    ).fetchone()
    return (str(row["schema"]), str(row["version"])) if row else None


def _version(text: str) -> tuple[int, ...]:
    return tuple(int(part) for part in text.split(".") if part.isdigit())


def vector_literal(vector: Sequence[float]) -> str:
    """pgvector's text form: ``[0.1,0.2]``."""
    return "[" + ",".join(repr(float(x)) for x in vector) + "]"


class PgVectorItemVectors(PgItemVectors):
    """Item vectors in a pgvector column with an HNSW index (see the module docstring)."""

    kind = "pgvector"

    def __init__(self, index: PgMemoryIndex, schema: str, version: str) -> None:
        super().__init__(index)
        self.version = version
        self.iterative_scan = _version(version) >= (0, 8)
        self.hnsw_from = HNSW_FROM
        self.ef_search = EF_SEARCH
        ext = '"' + schema.replace('"', '""') + '"'
        self._type = f"{ext}.vector"
        self._distance = f"OPERATOR({ext}.<=>)"
        self._opclass = f"{ext}.vector_cosine_ops"

    def _reset(self, db: PostgresConn, dims: int) -> None:
        super()._reset(db, dims)
        db.execute(
            "CREATE TABLE memory_item_embeddings("
            " id BIGINT PRIMARY KEY REFERENCES memory_items(id) ON DELETE CASCADE,"
            f" user_id TEXT NOT NULL, embedding {self._type}({int(dims)}) NOT NULL)"
        )
        db.execute("CREATE INDEX memory_item_embeddings_by_user ON memory_item_embeddings(user_id)")
        if dims <= HNSW_MAX_DIMS:
            db.execute(
                "CREATE INDEX memory_item_embeddings_hnsw ON memory_item_embeddings "
                f"USING hnsw (embedding {self._opclass})"
            )

    def store(self, user_id: str, rows: Sequence[tuple[int, list[float]]]) -> None:
        """Store the vectors of items that still exist, and mark them embedded; vectors
        of another width than the table's (the model changed meanwhile) are left out."""
        if not rows:
            return
        with self._index.transaction(user_id) as db:
            state = self._state(db)
            if state is None or state[2] != self.kind:
                return
            rows = [(i, v) for i, v in rows if len(v) == state[1]]
            if not rows:
                return
            db.executemany(
                "INSERT INTO memory_item_embeddings(id, user_id, embedding) "
                f"SELECT id, user_id, ?::{self._type} FROM memory_items WHERE id=? AND user_id=? "
                "ON CONFLICT(id) DO UPDATE SET embedding=excluded.embedding",
                [(vector_literal(vector), item_id, user_id) for item_id, vector in rows],
            )
            db.execute(
                "UPDATE memory_items SET embedded=1 WHERE id = ANY(?) AND user_id=?",
                ([item_id for item_id, _ in rows], user_id),
            )

    def count(self, user_id: str) -> int:
        with self._index.read() as db:
            if not self._ready(db):
                return 0
            row = db.execute(
                "SELECT COUNT(*) AS n FROM memory_item_embeddings WHERE user_id=?", (user_id,)
            ).fetchone()
        return int(row["n"])

    def knn(self, user_id: str, vector: list[float], limit: int) -> list[int]:
        """The ids of the user's ``limit`` items nearest ``vector`` by cosine distance,
        nearest first: exact for a small user, HNSW for a large one."""
        with self._index.transaction() as db:  # SET LOCAL lasts for this transaction
            state = self._state(db)
            if state is None or state[2] != self.kind or state[1] != len(vector):
                return []
            query = vector_literal(vector)
            if state[1] <= HNSW_MAX_DIMS and self._has_at_least(db, user_id, self.hnsw_from):
                found = self._hnsw(db, user_id, query, limit)
                if len(found) >= limit:
                    return found
                log.info("memory_hnsw_short", user_id=user_id, found=len(found), limit=limit)
            # Materialized: the HNSW index under an incremental sort would not be exact.
            rows = db.execute(
                "WITH mine AS MATERIALIZED (SELECT id, embedding FROM memory_item_embeddings "
                f"WHERE user_id=?) SELECT id FROM mine "
                f"ORDER BY embedding {self._distance} ?::{self._type}, id LIMIT ?",
                (user_id, query, limit),
            ).fetchall()
        return [int(r["id"]) for r in rows]

    def _hnsw(self, db: PostgresConn, user_id: str, query: str, limit: int) -> list[int]:
        db.execute(
            "SELECT set_config('hnsw.ef_search', ?, true)", (str(max(limit, self.ef_search)),)
        )
        if self.iterative_scan:
            db.execute("SELECT set_config('hnsw.iterative_scan', 'strict_order', true)")
        # The planner, short of statistics on user_id (a new table, or a user not among its
        # most common values), estimates a few rows and sorts the user's rows instead:
        # every plan but the HNSW index scan needs a sort, so that one is taken.
        db.execute("SELECT set_config('enable_sort', 'off', true)")
        rows = db.execute(
            f"SELECT id FROM memory_item_embeddings WHERE user_id=? "
            f"ORDER BY embedding {self._distance} ?::{self._type} LIMIT ?",
            (user_id, query, limit),
        ).fetchall()
        return [int(r["id"]) for r in rows]

    def _has_at_least(self, db: PostgresConn, user_id: str, n: int) -> bool:
        row = db.execute(
            "SELECT COUNT(*) AS n FROM (SELECT 1 FROM memory_item_embeddings "
            "WHERE user_id=? LIMIT ?) AS mine",
            (user_id, n),
        ).fetchone()
        return int(row["n"]) >= n

    def _ready(self, db: PostgresConn) -> bool:
        state = self._state(db)
        return state is not None and state[2] == self.kind
