"""Flow-trigger schedulers of two gateways on one real Postgres (``flow_trigger_jobs``):
a trigger scheduled through A fires on B after A stopped, although B knew of no job
when it was scheduled (its periodic look finds it), and only once."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from nexflow.gateway.flow_schedule import TriggerScheduler

WAKE_S = 1.0


class Fires:
    """The schedulers' fire callback: records (job id, due time) per scheduler."""

    def __init__(self) -> None:
        self.seen: list[tuple[str, datetime, float]] = []
        self.fired = asyncio.Event()

    async def __call__(self, job: Any, run_times: list[datetime]) -> None:
        self.seen.append((job.id, run_times[-1], time.time()))
        self.fired.set()


Started = tuple[TriggerScheduler, asyncio.Event]  # the event is set once it stopped


@pytest.fixture
async def start(pg_url: str) -> AsyncIterator[Callable[..., Any]]:
    running: list[tuple[TriggerScheduler, asyncio.Event]] = []

    async def build(fires: Fires) -> Started:
        sched = TriggerScheduler(pg_url, fires, wake_s=WAKE_S)
        await asyncio.to_thread(sched.open)  # one at a time: the first creates the table
        stopped = asyncio.Event()
        sched.start(stopped.set)
        # its first look at the table is queued with call_soon_threadsafe: let it run now,
        # so a job put afterwards is one this scheduler has not seen
        await asyncio.sleep(0)
        running.append((sched, stopped))
        return sched, stopped

    yield build
    for sched, stopped in running:
        if not stopped.is_set():
            sched.shutdown()
            await stopped.wait()


def test_the_wake_is_for_postgres_only(tmp_path: Path, pg_url: str) -> None:
    assert TriggerScheduler(tmp_path / "x.db", Fires(), wake_s=3).wake_s is None
    assert TriggerScheduler(pg_url, Fires(), wake_s=3).wake_s == 3


async def test_a_trigger_scheduled_on_a_stopped_gateway_fires_on_another(
    start: Callable[..., Any],
) -> None:
    fires_a, fires_b = Fires(), Fires()
    a, a_stopped = await start(fires_a)
    await start(fires_b)  # idle: no job in the table yet
    at = datetime.now(UTC).replace(microsecond=0) + timedelta(seconds=3)
    kwargs = {
        "user_id": "u1",
        "flow": "daily",
        "index": 0,
        "cron": f"{at.second} {at.minute} {at.hour} * * *",
        "timezone": "UTC",
        "args": {},
    }
    job = await asyncio.to_thread(a.put, "flow:u1:daily:0", kwargs)
    assert job.next_run_time == at
    a.shutdown()  # before it is due: the row stays in the shared table
    await asyncio.wait_for(a_stopped.wait(), 5)
    await asyncio.wait_for(fires_b.fired.wait(), 3 + WAKE_S + 3)
    await asyncio.sleep(WAKE_S * 2)
    assert [(jid, due) for jid, due, _ in fires_b.seen] == [("flow:u1:daily:0", at)]
    assert fires_b.seen[0][2] - at.timestamp() <= WAKE_S + 1.5
    assert fires_a.seen == []
