"""A full panel tool call through PanelService: handler in a fresh Wasm instance,
validation against <Data>, commit (state + version row in SQLite), re-render
(batch binding evaluation in the sandbox) and the chat snapshot.

Usage: ``python bench/panels_runtime_bench.py [iterations]``. Prints median and
p90 in milliseconds. Needs the sandbox guest (``scripts/build_guest.sh``).
"""

from __future__ import annotations

import asyncio
import statistics
import sys
import time
from collections.abc import Awaitable, Callable

from benchpanels import panel_service


async def _measure(fn: Callable[[], Awaitable[object]], iterations: int) -> tuple[float, float]:
    samples = []
    for _ in range(iterations):
        start = time.perf_counter_ns()
        await fn()
        samples.append((time.perf_counter_ns() - start) / 1e6)
    samples.sort()
    return statistics.median(samples), samples[int(len(samples) * 0.9)]


async def main() -> None:
    iterations = int(sys.argv[1]) if len(sys.argv) > 1 else 300
    async with panel_service() as (service, _, _):
        await service.create(template="server-monitor")
        await service.render("server-monitor")
        action = (await service.snapshot("server-monitor")).buttons[0].action

        async def tool_call() -> None:
            outcome = await service.call_tool("server-monitor", "restart_node", {"force": True})
            if not outcome.ok:
                raise SystemExit(outcome.error)

        async def full() -> None:
            await tool_call()
            await service.render("server-monitor")

        async def view_call() -> None:
            await service.call_tool("server-monitor", "filter_logs", {"level": "error"})
            await service.render("server-monitor")

        async def snapshot_cached() -> None:
            await service.snapshot("server-monitor")

        for _ in range(30):  # warm-up
            await full()
        rows = [
            ("tool call + re-render", full),
            ("tool call only", tool_call),
            ("$view call + re-render", view_call),
            ("press (chat button)", lambda: service.press(action)),
            ("snapshot (cached render)", snapshot_cached),
        ]
        print(f"server-monitor via PanelService, {iterations} iterations")
        for name, fn in rows:
            median, p90 = await _measure(fn, iterations)
            print(f"{name:<26} median {median:7.3f} ms   p90 {p90:7.3f} ms")


if __name__ == "__main__":
    asyncio.run(main())
