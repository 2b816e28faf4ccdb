"""Engine overhead with an instant fake host (no model), on SQLite.

Usage: .venv/bin/python bench/flows_bench.py
Prints seconds per step (a chain of N tool nodes), per run (one-node runs, one at a
time) and runs per second at 1, 8 and 32 concurrent runs.
"""

from __future__ import annotations

import asyncio
import sys
import tempfile
import time
from pathlib import Path

# The fake host the engine's tests use (an instant tool, no model).
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests" / "flows"))

from dbos import DBOS
from flows_support import FakeHost

from nexflow.flows import FlowEngine, load_flow_text
from nexflow.flows.engine import TERMINAL


def chain(n: int) -> str:
    lines = [
        f"  n{i}: {{type: tool, tool: t{f', needs: [n{i - 1}]' if i else ''}}}" for i in range(n)
    ]
    return "name: chain\nnodes:\n" + "\n".join(lines) + "\n"


async def run_all(engine: FlowEngine, text: str, count: int) -> float:
    flow = load_flow_text(text)
    started = time.perf_counter()
    ids = [await engine.start(flow, {}, owner="bench") for _ in range(count)]
    # a cheap poll (one query for all runs), so the bench measures the engine, not status()
    while True:
        found = await DBOS.list_workflows_async(
            workflow_ids=ids, load_input=False, load_output=False
        )
        if all(w.status in ("SUCCESS", "ERROR") for w in found):
            break
        await asyncio.sleep(0.005)
    elapsed = time.perf_counter() - started
    for run_id in ids:
        run = await engine.wait(run_id, timeout_s=600, states=TERMINAL)
        assert run.status == "completed", run
    return elapsed


async def main() -> None:
    for concurrency in (1, 8, 32):
        home = Path(tempfile.mkdtemp())
        engine = FlowEngine(
            FakeHost(), home=home, concurrency=concurrency, queue_poll_s=0.01, notify_poll_s=0.05
        )
        t0 = time.perf_counter()
        await engine.list_runs()
        launch = time.perf_counter() - t0
        await run_all(engine, chain(1), 1)  # warm up (the queue's first poll is slow)
        if concurrency == 1:
            one = await run_all(engine, chain(1), 1)
            twenty = await run_all(engine, chain(21), 1)
            print(f"launch (import + DBOS.launch): {launch:.2f} s")
            print(f"one-node run, start to status completed: {one * 1000:.0f} ms")
            print(f"per extra step (chain of 21 vs 1): {(twenty - one) / 20 * 1000:.1f} ms")
        n = 64
        elapsed = await run_all(engine, chain(2), n)
        print(
            f"concurrency {concurrency:>2}: {n} two-node runs in {elapsed:.2f} s "
            f"= {n / elapsed:.1f} runs/s"
        )
        await engine.close()


if __name__ == "__main__":
    asyncio.run(main())
