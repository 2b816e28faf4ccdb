"""Workspaces on a shared volume, safe across processes (issue #14, docs/scale-out.md).

Separate processes (tests/workspace/ws_replica_peer.py), each with its own workspace
service built by ``build_workspaces`` on one Postgres and one shared ``workspaces.root``,
work on one workspace through the real API and real git: every change lands, no
operation fails, main's history holds each of them once; a process sees another's
commits (its NOG is rebuilt); a holder SIGKILLed with the lock held frees it at once.
The lock itself: a wait times out or is cancelled without leaving a session behind, an
unreachable database is ``Unavailable``, SQLite storage takes no shared lock.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import psycopg
import pytest
from ws_replica_peer import USER, replica

from nexflow.config.model import WorkspacesConfig
from nexflow.workspace.api import Unavailable
from nexflow.workspace.repos import Repos
from nexflow.workspace.shared_lock import LocalLocks, PostgresLocks, workspace_locks

pytestmark = pytest.mark.slow

PEER = Path(__file__).with_name("ws_replica_peer.py")
REPO = Path(__file__).resolve().parents[2]
ROUNDS = 12  # per process; each round makes 4 commits on main (one a merge)


async def _peer(*args: str) -> asyncio.subprocess.Process:
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    return await asyncio.create_subprocess_exec(
        sys.executable,
        str(PEER),
        *args,
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        env=env,
    )


async def _line(proc: asyncio.subprocess.Process, wait_s: float = 60) -> str:
    assert proc.stdout is not None
    line = await asyncio.wait_for(proc.stdout.readline(), wait_s)
    if not line:
        assert proc.stderr is not None
        err = await proc.stderr.read()
        raise AssertionError(f"the peer ended early:\n{err.decode()[-3000:]}")
    return line.decode().strip()


def _git(path: Path, *args: str) -> str:
    return subprocess.run(
        ["git", *args], cwd=path, capture_output=True, text=True, check=True
    ).stdout


@pytest.mark.timeout(300)
async def test_two_processes_change_one_workspace_and_every_change_lands(
    pg_url: str, sandbox_cache: Path, tmp_path: Path
) -> None:
    root = tmp_path / "shared"
    async with replica(pg_url, root, tmp_path / "home-seed", sandbox_cache) as seed:
        await seed.write_file(USER, "counter.txt", "0")
        path = seed.workspace_path(USER)
    procs = [
        await _peer(
            "work", pg_url, str(root), str(tmp_path / f"home-{t}"), str(sandbox_cache), t, str(n)
        )
        for t, n in (("a", ROUNDS), ("b", ROUNDS))
    ]
    try:
        for proc in procs:
            assert await _line(proc) == "ready"
        for proc in procs:  # both start at once
            assert proc.stdin is not None
            proc.stdin.write(b"go\n")
            await proc.stdin.drain()
        results = []
        for proc in procs:
            out, err = await asyncio.wait_for(proc.communicate(), 240)
            assert proc.returncode == 0, err.decode()[-4000:]
            assert b"git_failed" not in err and b"index.lock" not in err
            results.append(json.loads(out.decode().strip().splitlines()[-1]))
    finally:
        for proc in procs:
            if proc.returncode is None:
                proc.kill()
                await proc.wait()

    total = 2 * ROUNDS
    assert _git(path, "show", "main:counter.txt") == str(total)  # no increment lost
    files = set(_git(path, "ls-tree", "-r", "--name-only", "main").split())
    for tag in "ab":
        for i in range(ROUNDS):
            assert f"notes/{tag}-{i}.txt" in files
            assert f"patches/{tag}-{i}.txt" in files
    # One line of history: create, the seed, then (increment, note, merge) per round, once.
    line = _git(path, "rev-list", "--first-parent", "main").split()
    assert len(line) == 2 + 3 * total
    subjects = _git(path, "log", "--first-parent", "--format=%s", "main").splitlines()
    assert sum(s.startswith("Edit counter.txt") for s in subjects) == total + 1
    assert sum(s.startswith("Accept patch") for s in subjects) == total
    assert _git(path, "status", "--porcelain") == ""  # the work tree follows main
    assert not list((path / ".git").rglob("*.lock"))
    print(f"Stale retries of the read-modify-write: {[r['retries'] for r in results]}")


async def test_a_process_reads_what_another_committed(
    pg_url: str, sandbox_cache: Path, tmp_path: Path
) -> None:
    root = tmp_path / "shared"
    async with replica(pg_url, root, tmp_path / "home-a", sandbox_cache) as ws:
        await ws.write_file(USER, "notes/mine.txt", "from A")
        graph = await ws.nog(USER)  # built, and kept in this process
        assert "notes/mine.txt" in graph.nodes and "notes/theirs.txt" not in graph.nodes

        peer = await _peer(
            "write", pg_url, str(root), str(tmp_path / "home-b"), str(sandbox_cache),
            "notes/theirs.txt", "from B",
        )  # fmt: skip
        out, err = await asyncio.wait_for(peer.communicate(), 120)
        assert peer.returncode == 0 and out.decode().strip() == "done", err.decode()[-3000:]

        graph = await ws.nog(USER)
        assert "notes/theirs.txt" in graph.nodes  # the NOG was rebuilt from main
        assert "notes/mine.txt" in graph.nodes
        assert await ws.read_file(USER, "notes/theirs.txt") == "from B"  # after B's gc
        await ws.write_file(USER, "notes/mine.txt", "from A, again")
        graph = await ws.nog(USER)
        assert graph.nodes["notes/mine.txt"].detail == "13 chars"
        path = ws.workspace_path(USER)
    files = set(_git(path, "ls-tree", "-r", "--name-only", "main").split())
    assert {"notes/mine.txt", "notes/theirs.txt"} <= files


async def test_a_holder_killed_with_the_lock_frees_it_at_once(
    pg_url: str, sandbox_cache: Path, tmp_path: Path
) -> None:
    root = tmp_path / "shared"
    async with replica(pg_url, root, tmp_path / "home-a", sandbox_cache) as ws:
        await ws.write_file(USER, "first.txt", "1")
        holder = await _peer("hold", pg_url, str(root), f"{USER}/default")
        try:
            assert await _line(holder) == "locked"
            write = asyncio.create_task(ws.write_file(USER, "after.txt", "2"))
            await asyncio.sleep(1.0)
            assert not write.done()  # the other process holds the workspace
            killed = time.perf_counter()
            holder.send_signal(signal.SIGKILL)
            await asyncio.wait_for(write, 5)
            took = time.perf_counter() - killed
        finally:
            if holder.returncode is None:
                holder.kill()
            await holder.wait()
        assert took < 2.0, took
        print(f"SIGKILL to the waiting write done: {took * 1000:.0f} ms")
        assert await ws.read_file(USER, "after.txt") == "2"


def _lock_sessions(url: str) -> int:
    with psycopg.connect(url, autocommit=True) as conn:
        row = conn.execute(
            "SELECT count(*) FROM pg_stat_activity WHERE application_name = %s",
            ("nexflow workspace lock",),
        ).fetchone()
    assert row is not None
    return int(row[0])


async def test_a_wait_is_cancelled_or_times_out_and_leaves_no_session(pg_url: str) -> None:
    holder, waiter = PostgresLocks(pg_url), PostgresLocks(pg_url, wait_timeout_s=0.5)
    before = await asyncio.to_thread(_lock_sessions, pg_url)
    try:
        async with holder.hold("u1/default"):
            started = time.perf_counter()
            with pytest.raises(Unavailable, match="held by another gateway or worker"):
                async with waiter.hold("u1/default"):
                    pass
            assert 0.4 < time.perf_counter() - started < 3
            task = asyncio.create_task(_enter(PostgresLocks(pg_url), "u1/default"))
            await asyncio.sleep(0.3)
            task.cancel()
            with pytest.raises(asyncio.CancelledError):
                await task
            async with waiter.hold("u1/other"):  # another workspace is not held
                pass
            # the holder's session and the waiter's idle one; none of the cancelled wait
            assert await asyncio.to_thread(_lock_sessions, pg_url) == before + 2
        async with waiter.hold("u1/default"):  # released: taken at once
            pass
    finally:
        await holder.close()
        await waiter.close()
    assert await asyncio.to_thread(_lock_sessions, pg_url) == before


async def _enter(locks: PostgresLocks, key: str) -> None:
    try:
        async with locks.hold(key):
            raise AssertionError("must wait: another holds the workspace")
    finally:
        await locks.close()


async def test_an_unreachable_database_makes_the_workspace_unavailable() -> None:
    locks = PostgresLocks("postgresql://nexflow@127.0.0.1:1/none", connect_timeout_s=1)
    with pytest.raises(Unavailable, match="cannot connect"):
        async with locks.hold("u1/default"):
            pass


async def test_one_process_on_sqlite_takes_no_shared_lock(tmp_path: Path) -> None:
    assert isinstance(workspace_locks(f"sqlite:///{tmp_path}/nexflow.db"), LocalLocks)
    assert isinstance(workspace_locks("postgresql://u@h/db"), PostgresLocks)
    repos = Repos(WorkspacesConfig(), tmp_path / "ws")
    async with repos.locked("u1/default"):
        await repos.repo("u1/default")
    assert repos._seen == {}  # no fingerprint read: nothing else moves the repository
    await repos.aclose()


def _advisory_waiters(url: str) -> int:
    with psycopg.connect(url, autocommit=True) as conn:
        row = conn.execute(
            "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND NOT granted"
        ).fetchone()
    assert row is not None
    return int(row[0])


async def test_recovery_on_start_reads_the_rows_again_under_the_lock(
    pg_url: str, sandbox_cache: Path, tmp_path: Path
) -> None:
    """A replica starting while another works: its recovery must not judge a patch by
    the rows it read before it held that workspace (a merged patch is not a lost one)."""
    root = tmp_path / "shared"
    async with replica(pg_url, root, tmp_path / "home-a", sandbox_cache) as a:
        await a.write_file("u0", "first.txt", "recovery visits u0/default first")
        await a.propose("u0", "file:first.txt", "a pending patch\n", "u0's", "test")
        patch = await a.propose(USER, "file:y.txt", "y\n", "add y", "test")

        async def start_b() -> None:
            async with replica(pg_url, root, tmp_path / "home-b", sandbox_cache):
                pass  # ready: its recovery ran

        held = PostgresLocks(pg_url)
        try:
            async with held.hold("u0/default"):
                b = asyncio.create_task(start_b())
                for _ in range(300):  # B read the rows and waits for u0/default
                    if await asyncio.to_thread(_advisory_waiters, pg_url):
                        break
                    await asyncio.sleep(0.05)
                assert not b.done()
                await a.accept(patch.id, USER)  # u1/default is free meanwhile
            await asyncio.wait_for(b, 60)
        finally:
            await held.close()
        assert (await a.get(patch.id)).status == "merged"
