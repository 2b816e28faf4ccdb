import asyncio
import uuid
from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest
import redis.asyncio as aioredis

from nexflow.config.model import BreakerConfig, RateLimitConfig
from nexflow.scale.limits import (
    Breaker,
    LocalBreaker,
    LocalRateLimiter,
    PostgresBreaker,
    PostgresRateLimiter,
    RateLimiter,
)
from nexflow.scale.redis_limits import RedisBreaker, RedisRateLimiter
from nexflow.storage.engine import PostgresEngine

RATE = RateLimitConfig(per_minute=600, burst=3)  # 10 tokens a second
BREAKER = BreakerConfig(failures=2, cooldown_s=0.3)

Make = Callable[[str], Any]


@pytest.fixture(params=["local", "postgres", "redis"])
def backend(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
async def make(request: pytest.FixtureRequest) -> AsyncIterator[Callable[..., Any]]:
    """``await make(kind, "rate" | "breaker")``: a limiter or breaker; several made in one
    test share the backend through separate connections (engines, clients)."""
    closers: list[Any] = []
    tag = uuid.uuid4().hex[:8]  # this test's keys on the shared Redis

    async def build(kind: str, what: str) -> RateLimiter | Breaker:
        if kind == "local":
            return LocalRateLimiter(RATE) if what == "rate" else LocalBreaker(BREAKER)
        if kind == "postgres":
            engine = PostgresEngine(request.getfixturevalue("pg_url"))
            await engine.open()
            closers.append(engine.close)
            pg = (
                PostgresRateLimiter(engine, RATE)
                if what == "rate"
                else PostgresBreaker(engine, BREAKER)
            )
            await pg.open()
            return pg
        client = aioredis.Redis.from_url(request.getfixturevalue("redis_url"))
        closers.append(client.aclose)
        if what == "rate":
            return RedisRateLimiter(client, RATE, name=tag)
        return RedisBreaker(client, BREAKER, name=tag)

    yield build
    for close in closers:
        await close()


async def test_bucket_allows_burst_then_says_how_long_to_wait(backend: str, make: Make) -> None:
    limiter: RateLimiter = await make(backend, "rate")
    assert [await limiter.take("u1") for _ in range(3)] == [0.0, 0.0, 0.0]
    wait = await limiter.take("u1")
    assert 0.0 < wait <= 0.1 + 1e-6
    assert await limiter.take("u2") == 0.0  # buckets are per key
    await asyncio.sleep(wait + 0.05)
    assert await limiter.take("u1") == 0.0
    assert await limiter.take("u1", cost=5) > 0  # more than the burst never fits


async def test_breaker_opens_probes_once_and_closes(backend: str, make: Make) -> None:
    breaker: Breaker = await make(backend, "breaker")
    assert await breaker.allow("strong")
    await breaker.failure("strong")
    assert await breaker.state("strong") == "closed"
    await breaker.failure("strong")
    assert await breaker.state("strong") == "open"
    assert not await breaker.allow("strong")
    await asyncio.sleep(0.35)
    assert await breaker.state("strong") == "half-open"
    assert await breaker.allow("strong")  # the one probe
    assert not await breaker.allow("strong")
    await breaker.failure("strong")  # the probe failed: open again
    assert await breaker.state("strong") == "open"
    await asyncio.sleep(0.35)
    assert await breaker.allow("strong")
    await breaker.release("strong")  # the probe was not made: another may go
    assert await breaker.allow("strong")
    await breaker.success("strong")
    assert await breaker.state("strong") == "closed"
    assert await breaker.allow("strong")


@pytest.mark.parametrize("kind", ["postgres", "redis"])
async def test_replicas_share_one_bucket_and_one_breaker(kind: str, make: Make) -> None:
    a: RateLimiter = await make(kind, "rate")
    b: RateLimiter = await make(kind, "rate")
    taken = await asyncio.gather(*(x.take("u") for x in (a, b, a, b, a, b)))
    assert sorted(w == 0.0 for w in taken) == [False, False, False, True, True, True]
    ba: Breaker = await make(kind, "breaker")
    bb: Breaker = await make(kind, "breaker")
    await ba.failure("p")
    await bb.failure("p")
    assert await ba.state("p") == "open"
    await asyncio.sleep(0.35)
    probes = await asyncio.gather(*(x.allow("p") for x in (ba, bb, ba, bb)))
    assert probes.count(True) == 1  # one probe among all replicas


async def test_postgres_prune_drops_full_buckets(make: Make) -> None:
    limiter: PostgresRateLimiter = await make("postgres", "rate")
    await limiter.take("u1")
    assert await limiter.prune() == 0
    await asyncio.sleep(0.35)  # 3 tokens at 10/s: full again after 0.3 s
    assert await limiter.prune() == 1
