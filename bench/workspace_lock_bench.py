"""What the cross-process workspace lock costs per operation (docs/scale-out.md,
"Workspaces on a shared volume"; nexflow/workspace/shared_lock.py).

Usage: .venv/bin/python bench/workspace_lock_bench.py [--n 1000] [--commits 200]
Starts a throwaway Postgres (the test helper) and prints, all measured in this one run,
medians and p95 in µs:

- ``Repos.locked(key)`` entered and left with nothing inside: the in-process lock alone
  (SQLite storage, one process) and with the Postgres advisory lock (lock, unlock, the
  two fingerprint reads in a thread), uncontended;
- one commit on main under the lock (``patching.commit_main``, what a file edit does:
  blobs, trees, commit, ``update-ref``, ``reset --hard``), with either lock, rounds
  alternating so both see the same machine load: the whole operation, and the part of
  it spent entering and leaving ``locked()`` ("in lock");
- the same commit with the Postgres lock handed between two ``Repos`` (two "replicas" in
  one process taking turns on another workspace: each finds the other's commit when it
  takes the lock, so it drops what it kept of that workspace).
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import tempfile
import time
from pathlib import Path

from nexflow.config.model import WorkspacesConfig
from nexflow.testing.postgres import fresh_schema, start_postgres
from nexflow.workspace import patching
from nexflow.workspace.repos import Repos, in_thread
from nexflow.workspace.shared_lock import LocalLocks, PostgresLocks

KEY = "bench/default"
TURNS = "bench/turns"  # the workspace two Repos take turns on


def _us(samples: list[float]) -> tuple[float, float]:
    ordered = sorted(samples)
    p95 = ordered[min(len(ordered) - 1, int(len(ordered) * 0.95))]
    return statistics.median(ordered) * 1e6, p95 * 1e6


async def _empty(repos: Repos, n: int) -> list[float]:
    samples = []
    for _ in range(n):
        started = time.perf_counter()
        async with repos.locked(KEY):
            pass
        samples.append(time.perf_counter() - started)
    return samples


async def _commit(repos: Repos, i: int, key: str = KEY) -> tuple[float, float]:
    """(the whole operation, the part spent taking and leaving the lock)."""
    started = time.perf_counter()
    async with repos.locked(key):
        entered = time.perf_counter()
        repo = await repos.repo(key)
        await in_thread(
            patching.commit_main, repo, {f"notes/{i}.txt": f"{i}\n"}, f"Edit {i}", "bench", 10**9
        )
        done = time.perf_counter()
    ended = time.perf_counter()
    return ended - started, (entered - started) + (ended - done)


async def main(n: int, commits: int) -> None:
    pg = start_postgres()
    if pg is None:
        raise SystemExit("needs the postgresql Debian package")
    url = fresh_schema(pg.url)
    config = WorkspacesConfig()
    with tempfile.TemporaryDirectory(prefix="nexflow-lock-bench-") as tmp:
        local = Repos(config, Path(tmp) / "local", LocalLocks())
        shared = Repos(config, Path(tmp) / "shared", PostgresLocks(url))
        other = Repos(config, Path(tmp) / "shared", PostgresLocks(url))
        try:
            for repos in (local, shared):  # create the repositories, warm up
                await _commit(repos, -1)
                await _empty(repos, 20)
            await _commit(shared, -1, TURNS)
            print(f"Postgres 15 on loopback; n = {n} (empty), {commits} commits per row\n")
            print(f"{'':44} {'median µs':>10} {'p95 µs':>10}")
            rows = {"local": await _empty(local, n), "postgres": await _empty(shared, n)}
            for name, samples in rows.items():
                median, p95 = _us(samples)
                print(f"  locked(), nothing inside, {name:17} {median:10.0f} {p95:10.0f}")
            timed: dict[str, list[tuple[float, float]]] = {"local": [], "postgres": [], "turns": []}
            for i in range(commits):  # alternate, so all three see the same load
                timed["local"].append(await _commit(local, i))
                timed["postgres"].append(await _commit(shared, i))
                # two processes' worth of Repos taking turns: each sees the other's commit
                timed["turns"].append(await _commit(other if i % 2 else shared, i, TURNS))
            labels = {
                "local": "one commit under the lock, local",
                "postgres": "one commit under the lock, postgres",
                "turns": "the same, two Repos taking turns",
            }
            print(f"\n{'':44} {'whole op':>10} {'p95':>10} {'in lock':>10}")
            for name, samples in timed.items():
                median, p95 = _us([whole for whole, _ in samples])
                lock, _ = _us([part for _, part in samples])
                print(f"  {labels[name]:42} {median:10.0f} {p95:10.0f} {lock:10.0f}")
        finally:
            for repos in (local, shared, other):
                await repos.aclose()
            pg.stop()


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--n", type=int, default=1000)
    parser.add_argument("--commits", type=int, default=200)
    args = parser.parse_args()
    asyncio.run(main(args.n, args.commits))
