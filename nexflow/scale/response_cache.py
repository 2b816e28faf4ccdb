"""The response cache shared by replicas (contract in :mod:`nexflow.llm.cache`).

One gateway keeps its cache in memory; replicas on Postgres share one here, so a reply
cached by one replica is a hit on every other:

- :class:`RedisResponseCache` (``redis.url`` set): ``SET nexflow:cache:<key> <json> PX
  <ttl ms>`` (``EX`` in milliseconds, so a fractional ``ttl_s`` holds) and ``GET``; keys
  expire by themselves. ``max_entries`` is not counted on Redis: entries leave by their
  TTL, and under memory pressure by the server's ``maxmemory-policy`` (``volatile-*``
  policies pick from these keys, all of which have a TTL).
- :class:`PostgresResponseCache`: the table ``scale_response_cache`` (key, JSON value,
  ``expires_at`` on the database's clock, indexed), created on :meth:`open`; one
  indexed ``SELECT`` per get, one UPSERT per put. Every ``min(64, max_entries)`` puts a
  replica prunes: expired rows, then rows past the ``max_entries`` newest (oldest stored
  first out: a hit does not refresh an entry, which would turn every read into a write).
  Both deletes walk the ``expires_at`` index, never the table; between prunes the table
  may hold that many more rows per replica (reads skip expired ones).

A backend that fails (down, timed out, a row that is not a response) is a miss and a
skipped put, never an error for the turn: the provider answers. It is logged once per
outage (``response_cache_unavailable`` with the traceback, then
``response_cache_recovered`` when a call succeeds again), not once per call.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

import structlog

from nexflow.config.model import ResponseCacheConfig
from nexflow.llm.cache import as_hit, cacheable, decode, encode
from nexflow.llm.client import LLMResponse
from nexflow.scale.errors import ScaleUnavailable
from nexflow.scale.limits import ensure_tables
from nexflow.storage.base import StorageError
from nexflow.storage.engine import Conn, Engine

T = TypeVar("T")
log = structlog.get_logger("nexflow.llm")

PRUNE_EVERY = 64  # puts per replica between two prunes (at most max_entries)

_NOW = "extract(epoch FROM clock_timestamp())::double precision"
_TABLE = (
    "CREATE TABLE IF NOT EXISTS scale_response_cache ("
    " key TEXT PRIMARY KEY, value TEXT NOT NULL, expires_at DOUBLE PRECISION NOT NULL)",
    "CREATE INDEX IF NOT EXISTS scale_response_cache_expires ON scale_response_cache (expires_at)",
)
_GET = f"SELECT value FROM scale_response_cache WHERE key = ? AND expires_at > {_NOW}"
_PUT = f"""
INSERT INTO scale_response_cache (key, value, expires_at) VALUES (?, ?, {_NOW} + ?)
ON CONFLICT (key) DO UPDATE SET value = excluded.value, expires_at = excluded.expires_at
"""
_EXPIRED = f"DELETE FROM scale_response_cache WHERE expires_at <= {_NOW}"
# With a constant TTL the order of expires_at is the order entries were stored in.
_OVER = """
DELETE FROM scale_response_cache WHERE expires_at <= (
    SELECT expires_at FROM scale_response_cache ORDER BY expires_at DESC OFFSET ? LIMIT 1)
"""


class _SharedCache:
    """The rules and the outage log around a store of JSON text by key."""

    backend = "shared"

    def __init__(self, config: ResponseCacheConfig) -> None:
        self._config = config
        self._down = False
        self.hits = 0
        self.misses = 0

    async def _load(self, key: str) -> str | bytes | None:
        raise NotImplementedError

    async def _save(self, key: str, value: bytes) -> None:
        raise NotImplementedError

    async def get(self, key: str) -> LLMResponse | None:
        try:
            stored = await self._load(key)
            response = None if stored is None else decode(stored)
        except (ScaleUnavailable, ValueError) as exc:
            self._failed(exc)
            response = None
        else:
            self._recovered()
        if response is None:
            self.misses += 1
            return None
        self.hits += 1
        return as_hit(response)

    async def put(self, key: str, response: LLMResponse) -> bool:
        if not cacheable(response):
            return False
        try:
            await self._save(key, encode(response))
        except ScaleUnavailable as exc:
            self._failed(exc)
            return False
        self._recovered()
        return True

    def _failed(self, exc: Exception) -> None:
        if not self._down:
            self._down = True
            log.warning(
                "response_cache_unavailable", backend=self.backend, error=str(exc), exc_info=exc
            )

    def _recovered(self) -> None:
        if self._down:
            self._down = False
            log.info("response_cache_recovered", backend=self.backend)


class RedisResponseCache(_SharedCache):
    """Entries at ``nexflow:cache:<key>``. ``client`` is a ``redis.asyncio.Redis`` the
    composition root owns (the shared limits' connection)."""

    backend = "redis"

    def __init__(self, client: Any, config: ResponseCacheConfig) -> None:
        super().__init__(config)
        self._client = client
        self._ttl_ms = max(1, round(config.ttl_s * 1000))

    async def _load(self, key: str) -> str | bytes | None:
        value = await self._call(self._client.get, "nexflow:cache:" + key)
        return value if isinstance(value, str | bytes) else None

    async def _save(self, key: str, value: bytes) -> None:
        await self._call(self._client.set, "nexflow:cache:" + key, value, px=self._ttl_ms)

    async def _call(self, command: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        from redis.exceptions import RedisError

        try:
            return await command(*args, **kwargs)
        except (RedisError, OSError) as exc:
            raise ScaleUnavailable(f"RedisResponseCache: {exc}") from exc


class PostgresResponseCache(_SharedCache):
    """Entries in ``scale_response_cache``; the engine is the shared limits' own."""

    backend = "postgres"

    def __init__(self, engine: Engine, config: ResponseCacheConfig) -> None:
        if engine.dialect != "postgresql":
            raise ValueError("PostgresResponseCache needs a Postgres engine")
        super().__init__(config)
        self._engine = engine
        self._prune_every = min(PRUNE_EVERY, config.max_entries)
        self._puts = 0

    async def open(self) -> None:
        """Create the table if it is missing (serialised between replicas), then prune."""

        await self._run(lambda conn: ensure_tables(conn, "nexflow.scale.cache", _TABLE))
        await self.prune()

    async def prune(self) -> int:
        """Drop expired rows and those past the ``max_entries`` newest; how many."""

        def prune(conn: Conn) -> int:
            expired = conn.execute(_EXPIRED).rowcount
            return expired + conn.execute(_OVER, (self._config.max_entries,)).rowcount

        return await self._run(prune)

    async def _load(self, key: str) -> str | None:
        row = await self._run(lambda conn: conn.execute(_GET, (key,)).fetchone())
        return None if row is None else str(row["value"])

    async def _save(self, key: str, value: bytes) -> None:
        args = (key, value.decode(), self._config.ttl_s)
        await self._run(lambda conn: conn.execute(_PUT, args))
        self._puts += 1
        if self._puts % self._prune_every == 0:
            await self.prune()

    async def _run(self, fn: Callable[[Conn], T]) -> T:
        try:
            return await self._engine.run(fn)
        except StorageError as exc:
            raise ScaleUnavailable(f"PostgresResponseCache: {exc}") from exc
