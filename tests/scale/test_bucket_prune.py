"""Idle rate-limit buckets leave ``scale_buckets`` (:class:`BucketPruner`): a bucket full
again answers as no row does, so it is dropped; a bucket in use keeps its row and its
level (a user who spent the burst stays limited). Real Postgres. (The pruner a gateway
starts: tests/gateway/test_replica_timings.py.)"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import psycopg
import pytest

from nexflow.config.model import RateLimitConfig
from nexflow.scale.limits import BucketPruner, PostgresRateLimiter
from nexflow.storage.engine import PostgresEngine

RATE = RateLimitConfig(per_minute=600, burst=3)  # 10 tokens a second: full 0.3 s after use


@pytest.fixture
async def engine(pg_url: str) -> AsyncIterator[PostgresEngine]:
    engine = PostgresEngine(pg_url)
    await engine.open()
    yield engine
    await engine.close()


def rows(pg_url: str) -> dict[str, float]:
    with psycopg.connect(pg_url) as conn:
        found = conn.execute("SELECT key, tokens FROM scale_buckets").fetchall()
    return {str(k): float(t) for k, t in found}


async def test_idle_buckets_go_and_a_drained_one_keeps_its_level(
    engine: PostgresEngine, pg_url: str
) -> None:
    limiter = PostgresRateLimiter(engine, RATE)
    slow = PostgresRateLimiter(engine, RateLimitConfig(per_minute=6, burst=3), name="slow")
    await limiter.open()
    for i in range(40):
        assert await limiter.take(f"idle-{i}") == 0.0
    assert await slow.take("other") == 0.0  # another limiter's bucket: refills in 30 s
    pruner = BucketPruner([limiter, slow], every_s=0.1, batch=7)  # several batches a round
    pruner.start()
    try:
        # One user spends the burst and keeps asking: its bucket never fills up again.
        async with asyncio.timeout(10):
            while len(rows(pg_url)) > 2:
                await limiter.take("busy", 3.0 if "rate:busy" not in rows(pg_url) else 0.5)
                await asyncio.sleep(0.05)
        left = rows(pg_url)
        assert set(left) == {"rate:busy", "slow:other"}
        assert left["rate:busy"] < 1.0
        # Still limited: a fresh bucket (no row) would grant a take of 2 at once.
        assert await limiter.take("busy", 2.0) > 0.0
    finally:
        await pruner.stop()
    await asyncio.sleep(0.35)  # everything full again, nothing taken
    assert await pruner.prune() == 1  # "busy"; "slow:other" needs 30 s
    assert set(rows(pg_url)) == {"slow:other"}
    assert await limiter.take("busy", 3.0) == 0.0  # no row: a full bucket, as before
