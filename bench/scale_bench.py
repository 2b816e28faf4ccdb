"""The scale-out primitives' costs on this machine (nexflow/scale, docs/scale-out.md).

Usage: .venv/bin/python bench/scale_bench.py [--n 1000]
Starts a throwaway Postgres and Redis (the test helpers), then prints, all measured in
this one run:

- lease acquire + release on Postgres (two statements on the storage engine's thread),
  median µs; the in-memory board alongside for scale;
- bus publish → receive latency, median and p95 µs, one message in flight at a time,
  publisher and subscriber on separate connections (as two replicas would be): in-process,
  Postgres LISTEN/NOTIFY (small, and 20 KB payloads which are chunked) and Redis pub/sub.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import time
from collections.abc import Awaitable, Callable

from nexflow.scale.bus import EventBus, LocalBus
from nexflow.scale.leases import LeaseBoard, MemoryLeaseBoard, PostgresLeaseBoard
from nexflow.scale.pg_bus import PostgresBus
from nexflow.scale.redis_bus import RedisBus
from nexflow.storage.engine import PostgresEngine
from nexflow.testing.postgres import fresh_schema, start_postgres
from nexflow.testing.redis import start_redis


def _us(samples: list[float]) -> tuple[float, float]:
    ordered = sorted(samples)
    p95 = ordered[min(len(ordered) - 1, int(len(ordered) * 0.95))]
    return statistics.median(ordered) * 1e6, p95 * 1e6


async def _leases(board: LeaseBoard, n: int) -> list[float]:
    samples = []
    for i in range(n):
        started = time.perf_counter()
        lease = await board.acquire(f"session-{i % 64}", "replica-a", 30)
        assert lease is not None
        await board.release(lease)
        samples.append(time.perf_counter() - started)
    return samples


async def _bus(publisher: EventBus, receiver: EventBus, n: int, pad: int) -> list[float]:
    samples = []
    payload = {"delta": "x" * pad}
    async with receiver.subscribe("turn:bench") as sub:
        for _ in range(20):  # warm up
            await publisher.publish("turn:bench", payload)
            await anext(sub)
        for _ in range(n):
            started = time.perf_counter()
            await publisher.publish("turn:bench", payload)
            await anext(sub)
            samples.append(time.perf_counter() - started)
    return samples


async def main(n: int) -> None:
    pg = start_postgres()
    redis = start_redis()
    if pg is None or redis is None:
        raise SystemExit("needs the postgresql and redis-server Debian packages")
    try:
        url = fresh_schema(pg.url)
        engine = PostgresEngine(url)
        await engine.open()
        board = PostgresLeaseBoard(engine)
        await board.open()
        print(f"n = {n} per row; Postgres 15 and Redis 7 on loopback\n")
        print(f"{'lease acquire+release':38} {'median µs':>10}")
        for name, lease_board in (("Postgres", board), ("in-memory", MemoryLeaseBoard())):
            median, _ = _us(await _leases(lease_board, n))
            print(f"  {name:36} {median:10.0f}")
        await engine.close()

        rows: list[tuple[str, Callable[[], EventBus], int]] = [
            ("in-process", LocalBus, 40),
            ("Postgres LISTEN/NOTIFY", lambda: PostgresBus(url), 40),
            ("Postgres LISTEN/NOTIFY, 20 KB chunked", lambda: PostgresBus(url), 20_000),
            ("Redis pub/sub", lambda: RedisBus(redis.url), 40),
            ("Redis pub/sub, 20 KB", lambda: RedisBus(redis.url), 20_000),
        ]
        print(f"\n{'bus publish → receive':38} {'median µs':>10} {'p95 µs':>10}")
        for name, factory, pad in rows:
            publisher = factory()
            receiver = publisher if isinstance(publisher, LocalBus) else factory()
            opened: list[Callable[[], Awaitable[None]]] = []
            for bus in {id(publisher): publisher, id(receiver): receiver}.values():
                await bus.open()
                opened.append(bus.close)
            try:
                median, p95 = _us(await _bus(publisher, receiver, n, pad))
            finally:
                for close in opened:
                    await close()
            print(f"  {name:36} {median:10.0f} {p95:10.0f}")
    finally:
        redis.stop()
        pg.stop()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=1000, help="samples per row")
    asyncio.run(main(parser.parse_args().n))
