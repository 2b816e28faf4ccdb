"""Rate limits and circuit-breaker state shared by replicas.

Today one gateway keeps both in memory: :class:`nexflow.bus.middleware.RateLimit` (a
token bucket per user: ``burst`` at once, refilled at ``per_minute``) and
:class:`nexflow.llm.router.CircuitBreaker` (open after ``failures`` consecutive failed
calls, ``cooldown_s``, one half-open probe). Replicas each keeping their own would let a
user send N times the limit and hammer a dead provider N times. These are the same two
mechanisms, async, behind one interface each:

- :class:`RateLimiter` ``take(key, cost) -> wait_s``: 0.0 when the tokens were taken,
  else the seconds until they would be (nothing taken): raise ``RateLimited(…, wait)``.
- :class:`Breaker`: ``allow / success / failure / release / state``, as
  ``CircuitBreaker``; a shared half-open probe is a lease (``probe_ttl_s``), so a replica
  that died while probing does not keep the breaker half-open for ever.

Implementations: ``Local*`` (one process; :class:`LocalBreaker` is ``CircuitBreaker``
itself), ``Postgres*`` (one statement per call, an UPSERT; tables ``scale_buckets`` and
``scale_breakers`` created on :meth:`open`; the database's clock) and, in
:mod:`nexflow.scale.redis_limits`, ``Redis*`` (one Lua script per call, Redis's clock).
Bucket rows on Postgres are not expired by the server: :meth:`PostgresRateLimiter.prune`
drops the ones that are full again (a full bucket and no row answer the same), in bounded
batches, and :class:`BucketPruner` (one supervised task per replica, every
``replicas.bucket_prune_s``) calls it, so the table holds the keys active in the last
``burst / rate`` seconds instead of every key ever seen; no call to :meth:`take` scans.
Redis keys expire by themselves.
"""

from __future__ import annotations

import asyncio
import time
from collections import OrderedDict
from collections.abc import Callable, Iterable, Sequence
from typing import Protocol, TypeVar

import structlog

from nexflow.config.model import BreakerConfig, RateLimitConfig
from nexflow.llm.router import CircuitBreaker
from nexflow.scale.errors import ScaleUnavailable
from nexflow.storage.base import StorageError
from nexflow.storage.engine import Conn, Engine

T = TypeVar("T")
log = structlog.get_logger("nexflow.scale.limits")


class RateLimiter(Protocol):
    """Token buckets by key: ``burst`` tokens at most, refilled at ``per_minute``."""

    async def take(self, key: str, cost: float = 1.0) -> float:
        """Take ``cost`` tokens from ``key``'s bucket: 0.0 when taken, else the seconds
        until there would be enough (and nothing is taken)."""
        ...


class Breaker(Protocol):
    """Consecutive-failure circuit breakers by key (a model profile), shared or not."""

    async def allow(self, key: str) -> bool:
        """May a call go to ``key`` now? Half-open lets exactly one probe through."""
        ...

    async def success(self, key: str) -> None: ...
    async def failure(self, key: str) -> None: ...

    async def release(self, key: str) -> None:
        """The probe let through by :meth:`allow` was not made (neither outcome)."""
        ...

    async def state(self, key: str) -> str:
        """``closed``, ``open`` or ``half-open``."""
        ...


class LocalRateLimiter:
    """Buckets in memory (the arithmetic of ``RateLimit``), at most ``max_keys``."""

    def __init__(
        self,
        config: RateLimitConfig,
        *,
        max_keys: int = 10_000,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._rate = config.per_minute / 60.0
        self._burst = float(config.burst)
        self._max_keys = max_keys
        self._clock = clock
        self._buckets: OrderedDict[str, tuple[float, float]] = OrderedDict()

    async def take(self, key: str, cost: float = 1.0) -> float:
        now = self._clock()
        tokens, last = self._buckets.pop(key, (self._burst, now))
        tokens = min(self._burst, tokens + (now - last) * self._rate)
        if tokens < cost:
            self._buckets[key] = (tokens, now)
            return (cost - tokens) / self._rate
        self._buckets[key] = (tokens - cost, now)
        if len(self._buckets) > self._max_keys:
            self._buckets.popitem(last=False)
        return 0.0


class LocalBreaker:
    """:class:`~nexflow.llm.router.CircuitBreaker` behind the async :class:`Breaker`."""

    def __init__(self, config: BreakerConfig, clock: Callable[[], float] = time.monotonic):
        self.inner = CircuitBreaker(config, clock)

    async def allow(self, key: str) -> bool:
        return self.inner.allow(key)

    async def success(self, key: str) -> None:
        self.inner.success(key)

    async def failure(self, key: str) -> None:
        self.inner.failure(key)

    async def release(self, key: str) -> None:
        self.inner.release(key)

    async def state(self, key: str) -> str:
        return self.inner.state(key)


_NOW = "extract(epoch FROM clock_timestamp())::double precision"

_TABLES = (
    "CREATE TABLE IF NOT EXISTS scale_buckets ("
    " key TEXT PRIMARY KEY, tokens DOUBLE PRECISION NOT NULL,"
    " updated_at DOUBLE PRECISION NOT NULL, granted BOOLEAN NOT NULL)",
    "CREATE TABLE IF NOT EXISTS scale_breakers ("
    " key TEXT PRIMARY KEY, failures BIGINT NOT NULL,"
    " opened_at DOUBLE PRECISION, probe_until DOUBLE PRECISION)",
)

# Arguments: key, burst, cost, then rate, burst, cost (for the refill of an existing row).
# ``granted`` records this call's outcome so RETURNING can tell it apart from the level.
_REFILL = "LEAST(?, b.tokens + GREATEST(0, excluded.updated_at - b.updated_at) * ?)"
_TAKE = f"""
WITH clock AS (SELECT {_NOW} AS now)
INSERT INTO scale_buckets AS b (key, tokens, updated_at, granted)
SELECT ?, CASE WHEN ? >= ? THEN ? - ? ELSE ? END, clock.now, ? >= ? FROM clock
ON CONFLICT (key) DO UPDATE SET
    tokens = CASE WHEN {_REFILL} >= ? THEN {_REFILL} - ? ELSE {_REFILL} END,
    updated_at = excluded.updated_at,
    granted = {_REFILL} >= ?
RETURNING tokens, granted
"""

# Arguments: prefix pattern, rate, burst, batch, rate, burst. A bucket is idle when its
# refill has reached ``burst``. The condition is repeated on the deleted row itself: a
# ``take`` that drained the bucket after the subquery read it is seen by Postgres's
# re-check of the locked row (READ COMMITTED), and that row stays.
_FULL = "{t}.tokens + GREATEST(0, clock.now - {t}.updated_at) * ? >= ?"
_PRUNE = f"""
WITH clock AS (SELECT {_NOW} AS now)
DELETE FROM scale_buckets b USING clock
WHERE b.key IN (
    SELECT i.key FROM scale_buckets i, clock
    WHERE i.key LIKE ? AND {_FULL.format(t="i")} LIMIT ?
) AND {_FULL.format(t="b")}
"""

_ALLOW = f"""
WITH clock AS (SELECT {_NOW} AS now),
probe AS (
    UPDATE scale_breakers SET probe_until = (SELECT now FROM clock) + ?
    WHERE key = ? AND opened_at IS NOT NULL
      AND (SELECT now FROM clock) - opened_at >= ?
      AND (probe_until IS NULL OR probe_until < (SELECT now FROM clock))
    RETURNING 1
)
SELECT (SELECT count(*) FROM probe) AS probed,
       (SELECT opened_at FROM scale_breakers WHERE key = ?) AS opened_at
"""

_FAILURE = f"""
WITH clock AS (SELECT {_NOW} AS now)
INSERT INTO scale_breakers AS b (key, failures, opened_at, probe_until)
SELECT ?, 1, CASE WHEN ? <= 1 THEN clock.now END, NULL FROM clock
ON CONFLICT (key) DO UPDATE SET
    failures = b.failures + 1,
    opened_at = CASE WHEN b.probe_until IS NOT NULL OR b.failures + 1 >= ?
                     THEN (SELECT now FROM clock) ELSE b.opened_at END,
    probe_until = NULL
"""

_STATE = f"""
SELECT CASE
    WHEN opened_at IS NULL THEN 'closed'
    WHEN probe_until >= {_NOW} OR {_NOW} - opened_at >= ? THEN 'half-open'
    ELSE 'open' END AS state
FROM scale_breakers WHERE key = ?
"""


def ensure_tables(conn: Conn, lock: str, statements: Sequence[str]) -> None:
    """Run ``statements`` (``CREATE … IF NOT EXISTS``) in one transaction under the
    advisory lock ``lock``, so replicas starting together do not race on the catalog."""
    conn.execute("BEGIN")
    conn.execute("SELECT pg_advisory_xact_lock(hashtext(?))", (lock,))
    for statement in statements:
        conn.execute(statement)
    conn.execute("COMMIT")


class _PostgresTables:
    def __init__(self, engine: Engine) -> None:
        if engine.dialect != "postgresql":
            raise ValueError(f"{type(self).__name__} needs a Postgres engine")
        self._engine = engine

    async def open(self) -> None:
        """Create the tables if they are missing (serialised between replicas)."""

        await self._run(lambda conn: ensure_tables(conn, "nexflow.scale.limits", _TABLES))

    async def _run(self, fn: Callable[[Conn], T]) -> T:
        try:
            return await self._engine.run(fn)
        except StorageError as exc:
            raise ScaleUnavailable(f"{type(self).__name__}: {exc}") from exc


class PostgresRateLimiter(_PostgresTables):
    """Buckets in ``scale_buckets``, keyed ``<name>:<key>``; one UPSERT per take."""

    def __init__(self, engine: Engine, config: RateLimitConfig, *, name: str = "rate") -> None:
        super().__init__(engine)
        self._rate = config.per_minute / 60.0
        self._burst = float(config.burst)
        self._prefix = f"{name}:"

    async def take(self, key: str, cost: float = 1.0) -> float:
        b, c, r = self._burst, cost, self._rate
        args = (self._prefix + key, b, c, b, c, b, b, c, b, r, c, b, r, c, b, r, b, r, c)
        row = await self._run(lambda conn: conn.execute(_TAKE, args).fetchone())
        if row["granted"]:
            return 0.0
        return (cost - float(row["tokens"])) / self._rate

    async def prune(self, batch: int = 1000) -> int:
        """Drop this limiter's buckets that are full again (as if they had no row), at
        most ``batch`` per statement; the number dropped."""
        pattern = self._prefix.replace("%", r"\%").replace("_", r"\_") + "%"
        args = (pattern, self._rate, self._burst, batch, self._rate, self._burst)
        dropped = 0
        while True:
            n = await self._run(lambda conn: int(conn.execute(_PRUNE, args).rowcount))
            dropped += n
            if n < batch:
                return dropped


class BucketPruner:
    """Drops idle ``scale_buckets`` rows of Postgres limiters every ``every_s`` (one task,
    owned by the composition root; ``every_s`` 0: never). Every replica runs one: a
    statement finding nothing to drop costs one scan of a table that stays small."""

    def __init__(
        self, limiters: Iterable[PostgresRateLimiter], every_s: float, *, batch: int = 1000
    ) -> None:
        self._limiters = tuple(limiters)
        self._every_s = every_s
        self._batch = batch
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        if self._task is None and self._limiters and self._every_s > 0:
            self._task = asyncio.create_task(self._run(), name="nexflow-bucket-prune")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
            self._task = None

    async def prune(self) -> int:
        """One round: every limiter's idle buckets; how many were dropped."""
        return sum([await limiter.prune(self._batch) for limiter in self._limiters])

    async def _run(self) -> None:
        while True:
            await asyncio.sleep(self._every_s)
            try:
                dropped = await self.prune()
            except ScaleUnavailable:  # the next round tries again; takes do not depend on it
                log.warning("bucket_prune_failed", exc_info=True)
                continue
            if dropped:
                log.debug("buckets_pruned", dropped=dropped)


def bucket_pruner(limiters: Iterable[object], every_s: float) -> BucketPruner | None:
    """A pruner for those of ``limiters`` that keep buckets on Postgres, or None."""
    on_postgres = [limiter for limiter in limiters if isinstance(limiter, PostgresRateLimiter)]
    return BucketPruner(on_postgres, every_s) if on_postgres and every_s > 0 else None


class PostgresBreaker(_PostgresTables):
    """Breaker state in ``scale_breakers``, keyed ``<name>:<key>``."""

    def __init__(
        self,
        engine: Engine,
        config: BreakerConfig,
        *,
        name: str = "llm",
        probe_ttl_s: float = 60.0,
    ) -> None:
        super().__init__(engine)
        self._config = config
        self._prefix = f"{name}:"
        self._probe_ttl_s = probe_ttl_s

    async def allow(self, key: str) -> bool:
        k = self._prefix + key
        args = (self._probe_ttl_s, k, self._config.cooldown_s, k)
        row = await self._run(lambda conn: conn.execute(_ALLOW, args).fetchone())
        return bool(row["probed"]) or row["opened_at"] is None

    async def success(self, key: str) -> None:
        k = self._prefix + key
        await self._run(lambda conn: conn.execute("DELETE FROM scale_breakers WHERE key = ?", (k,)))

    async def failure(self, key: str) -> None:
        n = self._config.failures
        args = (self._prefix + key, n, n)
        await self._run(lambda conn: conn.execute(_FAILURE, args))

    async def release(self, key: str) -> None:
        k = self._prefix + key
        sql = "UPDATE scale_breakers SET probe_until = NULL WHERE key = ?"
        await self._run(lambda conn: conn.execute(sql, (k,)))

    async def state(self, key: str) -> str:
        args = (self._config.cooldown_s, self._prefix + key)
        row = await self._run(lambda conn: conn.execute(_STATE, args).fetchone())
        return "closed" if row is None else str(row["state"])
