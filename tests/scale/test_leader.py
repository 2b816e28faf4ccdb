import asyncio
import os
import signal
import sys
import uuid
from pathlib import Path

import psycopg
import pytest

from nexflow.scale.leader import LocalLeadership, PostgresLeadership, Term, lead, leadership_for

PEER = Path(__file__).with_name("peer.py")
REPO = Path(__file__).resolve().parents[2]


def _name() -> str:
    return f"telegram:{uuid.uuid4().hex[:12]}"


async def _terminate(url: str, name: str) -> int:
    async with await psycopg.AsyncConnection.connect(url, autocommit=True) as conn:
        cur = await conn.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = %s",
            (f"nexflow leader {name}"[:63],),
        )
        return len(await cur.fetchall())


async def test_local_leadership_is_immediate_and_exclusive_per_name() -> None:
    leadership = LocalLeadership()
    async with leadership.campaign("a") as term:
        assert not term.lost.is_set()
        second = asyncio.create_task(_enter(leadership, "a"))
        await asyncio.sleep(0.05)
        assert not second.done()  # the same name waits
        async with leadership.campaign("b"):  # another name does not
            pass
    await asyncio.wait_for(second, 1)
    assert term.lost.is_set()  # the term ended


async def _enter(leadership: LocalLeadership | PostgresLeadership, name: str) -> Term:
    async with leadership.campaign(name) as term:
        return term


async def test_second_campaign_waits_until_the_first_ends(pg_server: object, pg_url: str) -> None:
    name = _name()
    a, b = PostgresLeadership(pg_url), PostgresLeadership(pg_url)
    async with a.campaign(name):
        waiting = asyncio.create_task(_enter(b, name))
        await asyncio.sleep(0.5)
        assert not waiting.done()
    await asyncio.wait_for(waiting, 3)


async def test_a_waiting_follower_holds_no_transaction(pg_url: str) -> None:
    """DDL that waits for older transactions (DBOS migrating its schema with CREATE INDEX
    CONCURRENTLY as a worker first starts) completes while a follower waits to lead."""
    name = _name()
    a, b = PostgresLeadership(pg_url), PostgresLeadership(pg_url)
    async with a.campaign(name):
        waiting = asyncio.create_task(_enter(b, name))
        await asyncio.sleep(0.3)
        async with await psycopg.AsyncConnection.connect(pg_url, autocommit=True) as conn:
            await conn.execute("CREATE TABLE ddl_probe (n INT)")
            await asyncio.wait_for(
                conn.execute("CREATE INDEX CONCURRENTLY ddl_probe_n ON ddl_probe (n)"), 5
            )
        assert not waiting.done()
    await asyncio.wait_for(waiting, 3)


@pytest.mark.slow
async def test_failover_when_the_leader_process_is_sigkilled(pg_url: str) -> None:
    name = _name()
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    proc = await asyncio.create_subprocess_exec(
        sys.executable, str(PEER), "leader", pg_url, name, stdout=asyncio.subprocess.PIPE, env=env
    )
    try:
        assert proc.stdout is not None
        line = await asyncio.wait_for(proc.stdout.readline(), 30)
        assert line.strip() == b"leader"
        mine = PostgresLeadership(pg_url)
        won = asyncio.Event()

        async def campaign() -> None:
            async with mine.campaign(name) as term:
                won.set()
                await term.lost.wait()

        task = asyncio.create_task(campaign())
        await asyncio.sleep(1.0)
        assert not won.is_set()  # the peer leads
        killed_at = asyncio.get_running_loop().time()
        proc.send_signal(signal.SIGKILL)
        await asyncio.wait_for(won.wait(), 5)
        took = asyncio.get_running_loop().time() - killed_at
        assert took < 3
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
    finally:
        if proc.returncode is None:
            proc.kill()
        await proc.wait()


async def test_terminated_backend_sets_lost_and_frees_the_lock(pg_url: str) -> None:
    name = _name()
    async with PostgresLeadership(pg_url).campaign(name) as term:
        assert await _terminate(pg_url, name) == 1
        await asyncio.wait_for(term.lost.wait(), 5)
        # The lock went with the session: another campaign wins at once.
        await asyncio.wait_for(_enter(PostgresLeadership(pg_url), name), 3)


async def test_lead_cancels_work_on_loss_and_campaigns_again(pg_url: str) -> None:
    name = _name()
    stop = asyncio.Event()
    started: list[Term] = []
    cancelled = 0

    async def work(term: Term) -> None:
        nonlocal cancelled
        started.append(term)
        try:
            await asyncio.Event().wait()
        except asyncio.CancelledError:
            cancelled += 1
            raise

    runner = asyncio.create_task(lead(PostgresLeadership(pg_url), name, work, stop))
    for _ in range(100):
        if started:
            break
        await asyncio.sleep(0.05)
    assert len(started) == 1
    assert await _terminate(pg_url, name) == 1
    for _ in range(100):
        if len(started) == 2:
            break
        await asyncio.sleep(0.05)
    assert len(started) == 2 and cancelled == 1
    assert started[0].lost.is_set() and not started[1].lost.is_set()
    stop.set()
    await asyncio.wait_for(runner, 3)
    assert cancelled == 2


async def test_lead_returns_when_work_returns() -> None:
    ran: list[str] = []

    async def work(term: Term) -> None:
        ran.append(term.name)

    await asyncio.wait_for(lead(LocalLeadership(), "x", work, asyncio.Event()), 1)
    assert ran == ["x"]


async def test_stop_while_waiting_for_the_lock_returns_and_leaves_no_waiter(pg_url: str) -> None:
    name = _name()
    async with PostgresLeadership(pg_url).campaign(name):
        stop = asyncio.Event()

        async def never(term: Term) -> None:
            raise AssertionError("must not lead while the other campaign holds the lock")

        waiting = asyncio.create_task(lead(PostgresLeadership(pg_url), name, never, stop))
        await asyncio.sleep(0.5)
        stop.set()
        await asyncio.wait_for(waiting, 5)
        async with await psycopg.AsyncConnection.connect(pg_url, autocommit=True) as conn:
            cur = await conn.execute(
                "SELECT count(*) FROM pg_stat_activity WHERE application_name = %s",
                (f"nexflow leader {name}"[:63],),
            )
            row = await cur.fetchone()
            assert row is not None and row[0] == 1  # only the holder's session is left


def test_factories_pick_the_shared_backend_only_for_postgres() -> None:
    assert isinstance(leadership_for("sqlite:///x.db"), LocalLeadership)
    assert isinstance(leadership_for("postgresql://u@h/db"), PostgresLeadership)
