import asyncio

import pytest

from nexflow.bus import Bus, Overloaded


async def test_one_session_is_handled_in_order_and_sessions_run_in_parallel() -> None:
    log: list[tuple[str, int]] = []
    running = 0
    peak = 0

    async def work(job: tuple[str, int]) -> None:
        nonlocal running, peak
        running += 1
        peak = max(peak, running)
        await asyncio.sleep(0.01)
        log.append(job)
        running -= 1

    bus: Bus[tuple[str, int]] = Bus(work, concurrency=4, max_pending=100)
    bus.start()
    for i in range(5):
        for key in "abcdef":
            bus.submit(key, (key, i))
    await bus.stop(drain_timeout_s=5)
    for key in "abcdef":
        assert [i for k, i in log if k == key] == list(range(5))
    assert peak == 4  # parallel across sessions, bounded by concurrency


async def test_a_session_never_runs_twice_at_once() -> None:
    active: set[str] = set()
    clashes = 0

    async def work(key: str) -> None:
        nonlocal clashes
        if key in active:
            clashes += 1
        active.add(key)
        await asyncio.sleep(0.001)
        active.discard(key)

    bus: Bus[str] = Bus(work, concurrency=8, max_pending=1000)
    bus.start()
    for _ in range(50):
        bus.submit("same", "same")
    await bus.stop()
    assert clashes == 0


async def test_overloaded_when_pending_is_full() -> None:
    gate = asyncio.Event()

    async def work(_: int) -> None:
        await gate.wait()

    depths: list[int] = []
    bus: Bus[int] = Bus(work, concurrency=1, max_pending=3, on_depth=depths.append)
    bus.start()
    for i in range(3):
        bus.submit(f"s{i}", i)
    with pytest.raises(Overloaded):
        bus.submit("s9", 9)
    gate.set()
    await bus.stop()
    assert depths[-1] == 0 and max(depths) == 3


async def test_a_failing_job_does_not_stop_the_lane() -> None:
    done: list[int] = []

    async def work(i: int) -> None:
        if i == 1:
            raise RuntimeError("boom")
        done.append(i)

    bus: Bus[int] = Bus(work, concurrency=2, max_pending=10)
    bus.start()
    for i in range(3):
        bus.submit("s", i)
    await bus.stop()
    assert done == [0, 2]
