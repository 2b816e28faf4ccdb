"""What the schedulers' periodic look at the shared job table costs on Postgres
(``nexflow.tasks.engine.WakingScheduler``, ``replicas.scheduler_wake_s``).

Every ``scheduler_wake_s`` each reminder and flow-trigger scheduler of every replica
runs what APScheduler runs when it wakes: claim the due rows (``UPDATE … WHERE id IN
(SELECT … FOR UPDATE SKIP LOCKED) RETURNING``, nothing due in the steady state) and read
the earliest next run time. Starts a throwaway Postgres (the test helper), then prints,
measured in this run (median and p95 of ``-n`` looks each):

- baseline: one primary-key lookup of a missing job (one round trip on the same
  connection), on an empty table;
- the look on an empty table, and with ``--jobs`` reminders scheduled over the next
  year (none due), before and after ``ANALYZE`` (autovacuum analyzes a table that grew
  by that much; without statistics the planner expects every row to be due);
- what that means for a deployment: time spent in looks per second (client wall time,
  round trips included) for ``--replicas`` gateways with two schedulers each at the
  default ``scheduler_wake_s``.

Run: ``.venv/bin/python bench/scheduler_wake_bench.py [--jobs 10000] [-n 1000]``.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import psycopg

from nexflow.config.model import ReplicasConfig
from nexflow.tasks.engine import Engine, date_trigger
from nexflow.testing.postgres import fresh_schema, start_postgres


async def _never(_job: Any, _run_times: list[datetime]) -> None:
    raise AssertionError("the bench's scheduler is paused: nothing fires")


def timed(fn: Callable[[], object], n: int) -> tuple[float, float]:
    """Median and p95 in µs of ``n`` calls."""
    samples = []
    for _ in range(n):
        t = time.perf_counter()
        fn()
        samples.append((time.perf_counter() - t) * 1e6)
    samples.sort()
    return statistics.median(samples), samples[int(len(samples) * 0.95)]


async def main(jobs: int, n: int, replicas: int) -> None:
    pg = start_postgres()
    if pg is None:
        raise SystemExit("needs the postgresql Debian package")
    try:
        url = fresh_schema(pg.url)
        engine = Engine(url, UTC, _never)
        engine.open()
        stopped = asyncio.Event()
        engine.start(stopped.set, paused=True)  # adds jobs, never looks on its own
        store = engine.store

        def look() -> None:
            store.get_due_jobs(datetime.now(UTC))
            store.get_next_run_time()

        def row(label: str, figures: tuple[float, float]) -> None:
            print(f"{label:52} {figures[0]:8.0f} µs median {figures[1]:8.0f} µs p95")

        print(f"Postgres 15 on loopback; n = {n} per row\n")
        row(
            "baseline: lookup of a missing id, empty table", timed(lambda: store.lookup_job("x"), n)
        )
        row("look (claim due + next run time), empty table", timed(look, n))

        start = datetime.now(UTC) + timedelta(hours=1)
        fill = time.perf_counter()
        for i in range(jobs):
            when = start + timedelta(seconds=i * 3153)  # spread over about a year
            engine.add(f"r{i:08x}", "bench", {"user_id": f"u{i % 100}"}, date_trigger(when, UTC))
        print(f"{'filled':52} {jobs:8d} jobs in {time.perf_counter() - fill:.1f} s")
        row(
            f"baseline: lookup of a missing id, {jobs} jobs",
            timed(lambda: store.lookup_job("x"), n),
        )
        row(f"look, {jobs} jobs (none due), no statistics yet", timed(look, n))
        with psycopg.connect(url, autocommit=True) as conn:
            conn.execute("ANALYZE reminder_jobs")  # what autovacuum does after such a fill
        median, p95 = timed(look, n)
        row(f"look, {jobs} jobs (none due), analyzed", (median, p95))
        claim = timed(lambda: store.get_due_jobs(datetime.now(UTC)), n)
        row("  of which: claim due rows", claim)
        row("  of which: earliest next run time", timed(store.get_next_run_time, n))

        wake_s = ReplicasConfig().scheduler_wake_s
        looks_per_s = replicas * 2 / wake_s  # reminders and flow triggers per replica
        print(
            f"\n{replicas} gateways x 2 schedulers every {wake_s:g} s: {looks_per_s:.1f} looks/s, "
            f"~{looks_per_s * median / 1000:.2f} ms of looks per second, round trips "
            f"included ({looks_per_s * median / 1e4:.3f}% of one core at most)"
        )
        engine.shutdown()
        await stopped.wait()
    finally:
        pg.stop()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--jobs", type=int, default=10_000)
    parser.add_argument("-n", type=int, default=1000)
    parser.add_argument("--replicas", type=int, default=10)
    args = parser.parse_args()
    asyncio.run(main(args.jobs, args.n, args.replicas))
