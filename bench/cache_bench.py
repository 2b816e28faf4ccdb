"""The LLM response cache's cost per call on each backend (nexflow/llm/cache.py,
nexflow/scale/response_cache.py; docs/scale-out.md).

Usage: .venv/bin/python bench/cache_bench.py [--n 2000]
Starts a throwaway Postgres and Redis (the test helpers), builds each shared cache the
way the composition root does (``shared_limits(config).response_cache(...)``: its own
two-thread engine, or the Redis client with its timeouts), then prints, all measured in
this one run, median and p95 µs over ``n`` calls of: a get that hits (the call a cached
turn makes instead of the provider), a get that misses, and a put, for the in-memory LRU
(one gateway on SQLite: the baseline), Postgres and Redis. The stored reply is ~1 KB.
"""

from __future__ import annotations

import argparse
import asyncio
import shutil
import statistics
import tempfile
import time
import uuid
from collections.abc import Awaitable, Callable
from pathlib import Path

from nexflow.config.model import NexflowConfig, ResponseCacheConfig
from nexflow.llm.cache import CacheBackend, MemoryResponseCache
from nexflow.llm.client import LLMResponse, Usage
from nexflow.scale.wiring import SharedLimits, shared_limits
from nexflow.testing.postgres import fresh_schema, start_postgres
from nexflow.testing.redis import start_redis

REPLY = LLMResponse(
    content="A summary of about a kilobyte. " * 32,
    model="openai/gpt-4o-mini",
    usage=Usage(prompt_tokens=900, completion_tokens=250, cost_usd=0.0003),
    latency_s=1.4,
)


def _us(samples: list[float]) -> tuple[float, float]:
    ordered = sorted(samples)
    p95 = ordered[min(len(ordered) - 1, int(len(ordered) * 0.95))]
    return statistics.median(ordered) * 1e6, p95 * 1e6


async def _time(n: int, call: Callable[[int], Awaitable[object]]) -> list[float]:
    for i in range(min(n, 50)):  # warm up: connections, prepared plans
        await call(i)
    samples = []
    for i in range(n):
        started = time.perf_counter()
        await call(i)
        samples.append(time.perf_counter() - started)
    return samples


async def _measure(cache: CacheBackend, n: int) -> dict[str, tuple[float, float]]:
    run = uuid.uuid4().hex
    keys = [f"{run}-{i}" for i in range(n)]
    puts = await _time(n, lambda i: cache.put(keys[i], REPLY))
    hits = await _time(n, lambda i: cache.get(keys[i]))
    assert await cache.get(keys[0]) is not None
    misses = await _time(n, lambda i: cache.get(f"{run}-missing-{i}"))
    return {"get, hit": _us(hits), "get, miss": _us(misses), "put": _us(puts)}


async def main(n: int) -> None:
    pg = start_postgres()
    redis = start_redis()
    if pg is None or redis is None:
        raise SystemExit("needs the postgresql and redis-server Debian packages")
    config = ResponseCacheConfig(routes=["summarize"], ttl_s=600, max_entries=10 * n)
    home = Path(tempfile.mkdtemp(prefix="nexflow-cache-bench-"))
    opened: list[SharedLimits] = []
    try:
        url = fresh_schema(pg.url)
        caches: list[tuple[str, CacheBackend]] = [("memory (LRU)", MemoryResponseCache(config))]
        for name, redis_url in (("Postgres", None), ("Redis", redis.url)):
            deployment = NexflowConfig(home=home, storage={"url": url}, redis={"url": redis_url})
            limits = shared_limits(deployment)
            assert limits is not None
            cache = limits.response_cache(config)
            await limits.open()
            opened.append(limits)
            caches.append((name, cache))
        results = {name: await _measure(cache, n) for name, cache in caches}
    finally:
        for limits in opened:
            await limits.close()
        redis.stop()
        pg.stop()
        shutil.rmtree(home, ignore_errors=True)
    print(f"n = {n} per row; Postgres 15 and Redis 7 on loopback; reply {len(REPLY.content)} B\n")
    print(f"{'':16} {'operation':12} {'median µs':>10} {'p95 µs':>10} {'× memory':>9}")
    base = results["memory (LRU)"]
    for name, rows in results.items():
        for op, (median, p95) in rows.items():
            ratio = median / base[op][0]
            print(f"{name:16} {op:12} {median:10.1f} {p95:10.1f} {ratio:9.0f}")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=2000, help="calls per row")
    asyncio.run(main(parser.parse_args().n))
