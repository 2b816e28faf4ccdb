"""What pruning ``scale_buckets`` costs and saves (``nexflow.scale.limits.BucketPruner``).

Starts a throwaway Postgres (the test helper), fills the table with ``--keys`` one-off
users (a bucket each, as a public bot's rate limit leaves them), then prints, measured in
this run:

- the median ``take`` (one UPSERT) with those rows kept and after the prune (baseline:
  the same ``take`` on an empty table, first);
- one prune round that drops them all (batches of 1000), and one that finds nothing
  (the steady state every ``replicas.bucket_prune_s``);
- the median ``take`` while prune rounds run back to back on another connection.

Run: ``.venv/bin/python bench/bucket_prune_bench.py [--keys 20000] [-n 2000]``.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import time

from nexflow.config.model import RateLimitConfig
from nexflow.scale.limits import PostgresRateLimiter
from nexflow.storage.engine import PostgresEngine
from nexflow.testing.postgres import fresh_schema, start_postgres

RATE = RateLimitConfig(per_minute=6000, burst=10)  # full 0.1 s after a take: idle at once


async def takes(limiter: PostgresRateLimiter, n: int, key: str = "busy") -> float:
    """Median µs of ``n`` takes of one key."""
    samples = []
    for _ in range(n):
        t = time.perf_counter()
        await limiter.take(key)
        samples.append((time.perf_counter() - t) * 1e6)
    return statistics.median(samples)


async def rows(engine: PostgresEngine) -> int:
    return int(
        await engine.run(
            lambda c: c.execute("SELECT count(*) AS n FROM scale_buckets").fetchone()["n"]
        )
    )


async def main(keys: int, n: int) -> None:
    pg = start_postgres()
    if pg is None:
        raise SystemExit("needs the postgresql Debian package")
    try:
        url = fresh_schema(pg.url)
        engine, other = PostgresEngine(url), PostgresEngine(url)
        await engine.open()
        await other.open()
        limiter = PostgresRateLimiter(engine, RATE)
        pruner_side = PostgresRateLimiter(other, RATE)
        await limiter.open()
        print(f"Postgres 15 on loopback; {keys} one-off keys, n = {n} takes per row\n")
        empty = await takes(limiter, n)
        print(f"{'take, empty table (baseline)':44} {empty:8.0f} µs")

        fill = time.perf_counter()
        for i in range(keys):
            await limiter.take(f"user-{i}")
        fill_s = time.perf_counter() - fill
        print(f"{'filled':44} {await rows(engine):8d} rows in {fill_s:.1f} s")
        full = await takes(limiter, n)
        print(f"{f'take, {keys} rows kept':44} {full:8.0f} µs")
        await asyncio.sleep(0.2)  # every bucket is full again

        t = time.perf_counter()
        dropped = await pruner_side.prune()
        drop_ms = (time.perf_counter() - t) * 1000
        print(f"{'prune round dropping them':44} {drop_ms:8.1f} ms ({dropped} rows)")
        idle = []
        for _ in range(50):
            t = time.perf_counter()
            await pruner_side.prune()
            idle.append((time.perf_counter() - t) * 1000)
        print(
            f"{'prune round, nothing to drop (median of 50)':44} {statistics.median(idle):8.2f} ms"
        )
        after = await takes(limiter, n)
        print(f"{'take, after the prune':44} {after:8.0f} µs   ({await rows(engine)} rows left)")

        for i in range(keys):  # again, then takes while rounds run back to back
            await limiter.take(f"user-{i}")
        await asyncio.sleep(0.2)
        stop = asyncio.Event()

        async def prune_loop() -> int:
            rounds = 0
            while not stop.is_set():
                await pruner_side.prune()
                rounds += 1
            return rounds

        loop = asyncio.create_task(prune_loop())
        during = await takes(limiter, n)
        stop.set()
        rounds = await loop
        print(
            f"{'take, prune rounds back to back alongside':44} {during:8.0f} µs   ({rounds} rounds)"
        )
        await engine.close()
        await other.close()
    finally:
        pg.stop()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--keys", type=int, default=20_000)
    parser.add_argument("-n", type=int, default=2000)
    args = parser.parse_args()
    asyncio.run(main(args.keys, args.n))
