"""What :class:`~nexflow.memory.service.MemoryService` needs of a memory index.

Two implementations: :class:`~nexflow.memory.store.MemoryIndex` (SQLite file, FTS5 and
sqlite-vec) and :class:`~nexflow.memory.pg_store.PgMemoryIndex` (Postgres, full-text
search and pgvector's HNSW, or exact cosine ranking without pgvector). Both are
synchronous: the service calls them from its one database thread, never from the event
loop.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Protocol

from nexflow.memory.notes import Chunk
from nexflow.memory.pages import PageIndex
from nexflow.memory.store import Hit, Item, MemoryIndex


class ItemVectorStore(Protocol):
    """The item vectors of an index (``index.vec``)."""

    def ensure(self, model: str, dims: int) -> None:
        """Make ready for vectors of ``model``; a different model or width re-embeds all."""
        ...

    def unembedded(self, user_id: str, limit: int) -> list[tuple[int, str]]:
        """The user's items without a vector yet: (id, text), oldest first."""
        ...

    def store(self, user_id: str, rows: Sequence[tuple[int, list[float]]]) -> None:
        """Store the vectors of items that still exist, and mark them embedded."""
        ...

    def knn(self, user_id: str, vector: list[float], limit: int) -> list[int]:
        """The ids of the user's ``limit`` items nearest ``vector``, nearest first."""
        ...


class ItemIndex(Protocol):
    """A rebuildable index over the users' memory files (Markdown is the truth).

    ``search`` fuses a keyword ranking and, given ``query_vector``, a vector ranking by
    reciprocal rank (k = 60), so both engines' results are comparable.
    """

    @property
    def vectors(self) -> bool:
        """Whether this index can rank by vectors at all."""
        ...

    @property
    def vector_error(self) -> str | None:
        """Why :attr:`vectors` is False (None when it is True)."""
        ...

    @property
    def vec(self) -> ItemVectorStore: ...

    @property
    def pages(self) -> PageIndex:
        """Context pages (nexflow/memory/paging.py)."""
        ...

    def close(self) -> None: ...

    def stale_files(
        self, user_id: str, files: dict[str, tuple[int, int]]
    ) -> tuple[list[str], list[str]]:
        """``files`` maps relative path -> (mtime_ns, size). Returns (changed, removed)."""
        ...

    def index_file(
        self, user_id: str, path: str, chunks: Sequence[Chunk], stamp: tuple[int, int] | None
    ) -> list[int]:
        """Make the items of ``path`` match ``chunks`` (``stamp`` None removes the file)."""
        ...

    def get(self, user_id: str, item_id: int) -> Item | None: ...

    def find(self, user_id: str, path: str, digest: str) -> Item | None:
        """The newest item of ``path`` with this content digest."""
        ...

    def count(self, user_id: str | None = None) -> int: ...

    def vector_skip(self, user_id: str) -> str | None:
        """Why this user's search must be keyword-only although vectors work, or None."""
        ...

    def search(
        self, user_id: str, query: str, k: int, query_vector: list[float] | None
    ) -> list[Hit]: ...


class SQLiteItemIndex(MemoryIndex):
    """The SQLite index as an :class:`ItemIndex`: sqlite-vec's KNN has no per-user cap."""

    def vector_skip(self, user_id: str) -> str | None:
        return None


def is_postgres_url(url: str | None) -> bool:
    return url is not None and url.startswith(("postgresql://", "postgres://"))


def open_index(db_path: Path, url: str | None) -> ItemIndex:
    """The index ``storage.url`` asks for: Postgres for a ``postgresql://`` URL, else the
    SQLite file ``db_path``. Blocking: call it on the database thread."""
    if url is not None and is_postgres_url(url):
        from nexflow.memory.pg_store import PgMemoryIndex  # psycopg only when asked for

        return PgMemoryIndex(url)
    return SQLiteItemIndex(db_path)
