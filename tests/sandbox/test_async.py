from __future__ import annotations

import asyncio
import time

import pytest

from nexflow.sandbox import EvalResult, OutOfFuel, SandboxLimits, WallTimeExceeded
from nexflow.sandbox.engine import SandboxEngine


async def test_arun_handler(sandbox: SandboxEngine) -> None:
    outcome = await sandbox.arun_handler("$state.n = n * 2;", {}, {"n": 21})

    assert outcome.state == {"n": 42}


async def test_aeval_batch(sandbox: SandboxEngine) -> None:
    results = await sandbox.aeval_batch(["$state.a + 1"], {"a": 1})

    assert results == [EvalResult(ok=True, value=2)]


async def test_loop_keeps_running_while_a_guest_spins(sandbox: SandboxEngine) -> None:
    ticks = 0

    async def ticker() -> None:
        nonlocal ticks
        while True:
            await asyncio.sleep(0.01)
            ticks += 1

    task = asyncio.create_task(ticker())
    try:
        with pytest.raises(WallTimeExceeded):
            await sandbox.arun_handler(
                "for (;;) {}", {}, {}, SandboxLimits(fuel=10**15, wall_time_ms=300)
            )
    finally:
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task

    assert ticks >= 10


async def test_concurrent_calls_are_isolated(sandbox: SandboxEngine) -> None:
    calls = [
        sandbox.arun_handler("$state.id = id; $emit('done', id);", {}, {"id": i}) for i in range(8)
    ]
    outcomes = await asyncio.gather(*calls)

    assert [o.state["id"] for o in outcomes] == list(range(8))


async def test_a_slow_call_does_not_cut_a_fast_one_short(sandbox: SandboxEngine) -> None:
    slow = asyncio.create_task(
        sandbox.arun_handler("for (;;) {}", {}, {}, SandboxLimits(fuel=10**15, wall_time_ms=400))
    )
    await asyncio.sleep(0.05)  # let the slow call start spinning
    start = time.perf_counter()
    fast = [await sandbox.arun_handler("$state.ok = true;", {}, {}) for _ in range(20)]
    with pytest.raises(WallTimeExceeded):
        await slow

    assert all(o.state == {"ok": True} for o in fast)
    assert time.perf_counter() - start >= 0.3


async def test_errors_cross_the_thread_boundary(sandbox: SandboxEngine) -> None:
    with pytest.raises(OutOfFuel):
        await sandbox.arun_handler("while (true) {}", {}, {}, SandboxLimits(fuel=10_000_000))
