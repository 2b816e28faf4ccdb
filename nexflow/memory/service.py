"""``MemoryService``: save, search and get memory items of one user at a time.

Before every operation the user's Markdown folder is compared with the index by file
mtime and size, so a hand edit is visible to the very next search (no watcher task to
supervise). The index is a SQLite file, or Postgres when ``index_url`` names a server
(:mod:`~nexflow.memory.index`); all its work runs in one dedicated thread, embedding calls
run on the loop.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, date, datetime
from functools import partial
from pathlib import Path
from typing import Literal, TypeVar

import structlog

from nexflow.memory import notes
from nexflow.memory.embedder import Embedder, ShortPages
from nexflow.memory.errors import EmbedderError, MemoryStoreError
from nexflow.memory.index import ItemIndex, open_index
from nexflow.memory.store import Hit, Item

log = structlog.get_logger("nexflow.memory")
T = TypeVar("T")
EMBED_BATCH = 64


@dataclass(frozen=True, slots=True)
class SearchResult:
    hits: list[Hit]
    mode: Literal["hybrid", "keyword"]
    notice: str | None  # why the search was keyword-only, for the model and the user


class MemoryService:
    def __init__(
        self,
        db_path: Path,
        workspace: Path,
        embedder: Embedder | None,
        no_embedder_reason: str = "no embedder is configured (memory.embedder: none)",
        today: Callable[[], date] = lambda: datetime.now(UTC).date(),
        index_url: str | None = None,
    ) -> None:
        """``index_url``: a ``postgresql://`` URL keeps the index in Postgres (shared by
        replicas); None or anything else, the SQLite file ``db_path``."""
        self._db_path = db_path
        self._index_url = index_url
        self._workspace = workspace
        self._embedder = embedder
        self._no_embedder = no_embedder_reason
        self._today = today
        self._index: ItemIndex | None = None
        self._thread = ThreadPoolExecutor(max_workers=1, thread_name_prefix="nexflow-memory")
        self._locks: dict[str, asyncio.Lock] = {}

    @property
    def embedder(self) -> Embedder | None:
        """The embedder search and page-in use (None: keyword search only)."""
        return self._embedder

    async def start(self) -> None:
        self._index = await self._run(open_index, self._db_path, self._index_url)

    async def stop(self) -> None:
        if self._embedder is not None:
            await self._embedder.close()
        if self._index is not None:
            await self._run(self._index.close)
            self._index = None
        self._thread.shutdown(wait=True)

    @property
    def index(self) -> ItemIndex:
        if self._index is None:
            raise MemoryStoreError("memory is not started")
        return self._index

    def folder(self, user_id: str) -> Path:
        return notes.user_dir(self._workspace, user_id)

    async def save(
        self,
        user_id: str,
        text: str,
        tags: list[str],
        tainted: tuple[str, ...] = (),
        *,
        key: str | None = None,
    ) -> Item:
        """Append a fact to today's note; ``tainted`` (the turn's untrusted sources) marks it.
        With ``key`` (a flow step's idempotency key) a fact already saved with that key is
        returned instead of being appended again (the step ran again after a crash)."""
        async with self._lock(user_id):
            await self._sync(user_id)
            found = await self._run(notes.find_key, self.folder(user_id), key) if key else None
            if found is None:
                found = await self._run(
                    notes.append_note, self.folder(user_id), self._today(), text, tags, tainted, key
                )
                await self._sync(user_id)
            else:
                log.info("memory_save_replayed", user_id=user_id, key=key)
            path, chunk = found
            saved = await self._run(self.index.find, user_id, self._relative(path), chunk.digest)
            if saved is None:
                raise MemoryStoreError("the note was written but could not be indexed")
            try:
                await self._embed_pending(user_id)
            except EmbedderError as exc:  # the item is saved; the next search retries
                log.warning("memory_embed_deferred", error=exc.message)
            return saved

    async def get(self, user_id: str, item_id: int) -> Item | None:
        async with self._lock(user_id):
            await self._sync(user_id)
            return await self._run(self.index.get, user_id, item_id)

    async def search(self, user_id: str, query: str, k: int) -> SearchResult:
        async with self._lock(user_id):
            await self._sync(user_id)
            notice: str | None = None
            vector: list[float] | None = None
            if self._embedder is None:
                notice = self._no_embedder
            elif not self.index.vectors:
                notice = self.index.vector_error
            elif skip := await self._run(self.index.vector_skip, user_id):
                notice = skip
            else:
                try:
                    await self._embed_pending(user_id)
                    vector = (await self._embedder.embed([query]))[0]
                    await self._run(self.index.vec.ensure, self._embedder.name, len(vector))
                except EmbedderError as exc:
                    notice = f"vector search skipped: {exc.message}"
            hits = await self._run(self.index.search, user_id, query, k, vector)
            if vector is not None:
                return SearchResult(hits, "hybrid", None)
            return SearchResult(hits, "keyword", f"keyword-only search: {notice}")

    # -- for context paging (nexflow/memory/paging.py) -----------------------------------

    @property
    def embedder_name(self) -> str | None:
        """The embedding model's name, or None when vectors cannot be made."""
        if self._embedder is None or self._index is None or not self._index.vectors:
            return None
        return self._embedder.name

    def page_embed_chars(self, default: int) -> int:
        """How much of a paged-out page to embed: the embedder's limit, else ``default``."""
        if isinstance(self._embedder, ShortPages):
            return min(default, self._embedder.page_chars)
        return default

    async def embed(self, texts: Sequence[str]) -> list[list[float]] | None:
        """Vectors for ``texts`` from memory's embedder; None without one or when it fails."""
        if self.embedder_name is None or self._embedder is None or not texts:
            return None
        try:
            return await self._embedder.embed(texts)
        except EmbedderError as exc:
            log.warning("memory_embed_failed", error=exc.message)
            return None

    async def run_in_db(self, fn: Callable[..., T], *args: object) -> T:
        """Run ``fn`` (a method of :attr:`index` or its ``pages``) in the database thread."""
        return await self._run(fn, *args)

    # -- internals -----------------------------------------------------------------------

    def _lock(self, user_id: str) -> asyncio.Lock:
        return self._locks.setdefault(user_id, asyncio.Lock())

    async def _run(self, fn: Callable[..., T], *args: object) -> T:
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._thread, partial(fn, *args))

    def _relative(self, path: Path) -> str:
        return path.relative_to(self._workspace).as_posix()

    async def _sync(self, user_id: str) -> None:
        await self._run(self._sync_files, user_id)

    def _sync_files(self, user_id: str) -> None:
        """Re-index the user's files whose mtime or size changed (runs in the DB thread)."""
        files = {}
        for path in notes.memory_files(self.folder(user_id)):
            st = path.stat()
            files[self._relative(path)] = (path, (st.st_mtime_ns, st.st_size))
        changed, removed = self.index.stale_files(
            user_id, {rel: stamp for rel, (_, stamp) in files.items()}
        )
        for rel in changed:
            path, stamp = files[rel]
            text = path.read_text(encoding="utf-8", errors="replace")
            self.index.index_file(user_id, rel, notes.parse(text), stamp)
        for rel in removed:
            self.index.index_file(user_id, rel, [], None)
        if changed or removed:
            log.info("memory_reindexed", user_id=user_id, changed=changed, removed=removed)

    async def _embed_pending(self, user_id: str) -> None:
        """Embed the user's items that have no vector yet (new, or after a model change)."""
        if self._embedder is None or not self.index.vectors:
            return
        while pending := await self._run(self.index.vec.unembedded, user_id, EMBED_BATCH):
            vectors = await self._embedder.embed([text for _, text in pending])
            await self._run(self.index.vec.ensure, self._embedder.name, len(vectors[0]))
            rows = [(item_id, vec) for (item_id, _), vec in zip(pending, vectors, strict=True)]
            await self._run(self.index.vec.store, user_id, rows)
            if len(pending) < EMBED_BATCH:
                return
