"""Which rate limiters, circuit breakers and response cache a deployment uses.

:func:`shared_limits` returns None on one gateway (SQLite storage): the callers keep
their in-memory ``RateLimit`` buckets and ``CircuitBreaker``, at no extra cost. On
Postgres storage it returns a :class:`SharedLimits` whose limiters and breakers live on
Redis when ``redis.url`` is set (one Lua script per call), else on Postgres (one UPSERT
per call, its own small engine), so every replica of the deployment sees the same
buckets and the same open breakers (docs/scale-out.md, "Replicas"). The LLM response
cache goes the same way (:mod:`nexflow.scale.response_cache`): Redis, else a Postgres
table on the same engine; on SQLite the resolver keeps its in-memory LRU.

The objects can be made before :meth:`SharedLimits.open` (the composition root builds
the graph first, starts it later); they must not be called before it.
"""

from __future__ import annotations

from typing import Any

from nexflow.config.model import (
    BreakerConfig,
    NexflowConfig,
    RateLimitConfig,
    ResponseCacheConfig,
)
from nexflow.llm.cache import CacheBackend
from nexflow.scale.limits import (
    Breaker,
    PostgresBreaker,
    PostgresRateLimiter,
    RateLimiter,
)
from nexflow.scale.response_cache import PostgresResponseCache, RedisResponseCache
from nexflow.storage.engine import Engine, PostgresEngine


class SharedLimits:
    """Makes shared limiters, breakers and response caches on one backend connection it
    owns."""

    def __init__(self, *, engine: Engine | None = None, redis: Any = None) -> None:
        if (engine is None) == (redis is None):
            raise ValueError("SharedLimits needs exactly one of a Postgres engine or Redis")
        self._engine = engine
        self._redis = redis
        self._tables: PostgresRateLimiter | None = None
        self._caches: list[PostgresResponseCache] = []

    @property
    def backend(self) -> str:
        return "redis" if self._redis is not None else "postgres"

    def rate_limiter(self, config: RateLimitConfig, *, name: str = "rate") -> RateLimiter:
        if self._redis is not None:
            from nexflow.scale.redis_limits import RedisRateLimiter

            return RedisRateLimiter(self._redis, config, name=name)
        assert self._engine is not None
        limiter = PostgresRateLimiter(self._engine, config, name=name)
        self._tables = self._tables or limiter
        return limiter

    def breaker(self, config: BreakerConfig, *, name: str = "llm") -> Breaker:
        if self._redis is not None:
            from nexflow.scale.redis_limits import RedisBreaker

            return RedisBreaker(self._redis, config, name=name)
        assert self._engine is not None
        return PostgresBreaker(self._engine, config, name=name)

    def response_cache(self, config: ResponseCacheConfig) -> CacheBackend:
        if self._redis is not None:
            return RedisResponseCache(self._redis, config)
        assert self._engine is not None
        cache = PostgresResponseCache(self._engine, config)
        self._caches.append(cache)  # its table is made by open()
        return cache

    async def open(self) -> None:
        """Connect, and on Postgres create the tables if they are missing."""
        if self._engine is None:
            return None  # a Redis client connects on its first command
        await self._engine.open()
        tables = self._tables or PostgresRateLimiter(self._engine, RateLimitConfig())
        await tables.open()  # both tables, serialised between replicas
        for cache in self._caches:
            await cache.open()

    async def close(self) -> None:
        if self._redis is not None:
            await self._redis.aclose()
        elif self._engine is not None:
            await self._engine.close()


def shared_limits(config: NexflowConfig, *, name: str = "nexflow") -> SharedLimits | None:
    """The shared limits a deployment's config asks for (not yet open), or None on SQLite.
    ``name`` tells this replica's connection apart in ``CLIENT LIST``."""
    if not config.uses_postgres:
        return None
    if config.redis.url:
        import redis.asyncio as aioredis
        from redis.asyncio.retry import Retry
        from redis.backoff import NoBackoff

        # Every inbound message and model call waits on it: one immediate retry (a pooled
        # connection gone stale after a Redis restart), short timeouts, then the caller's
        # fallback to this process's own limits instead of seconds of backoff.
        client = aioredis.Redis.from_url(
            config.redis.url,
            client_name=name,
            retry=Retry(NoBackoff(), 1),
            socket_connect_timeout=1.0,
            socket_timeout=2.0,
        )
        return SharedLimits(redis=client)
    return SharedLimits(engine=PostgresEngine(config.storage_url, threads=2))
