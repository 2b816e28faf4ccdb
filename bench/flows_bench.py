"""Engine overhead with an instant fake host (no model), on SQLite.

Usage: .venv/bin/python bench/flows_bench.py
Prints seconds per step (a chain of N tool nodes), per run (one-node runs, one at a
time) and runs per second at 1, 8 and 32 concurrent runs. Medians of ``REPEAT`` rounds;
the baseline, measured in the same run on the same DBOS, is a bare DBOS workflow with the
same number of steps (no graph, no status, no host): the difference is Nexflow's share.
"""

from __future__ import annotations

import asyncio
import statistics
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

REPEAT = 5


@DBOS.step()
async def _bare_step(i: int) -> int:
    return i


@DBOS.workflow()
async def _bare_workflow(steps: int) -> int:
    total = 0
    for i in range(steps):
        total += await _bare_step(i)
    return total


async def bare(steps: int) -> float:
    started = time.perf_counter()
    handle = await DBOS.start_workflow_async(_bare_workflow, steps)
    await handle.get_result()
    return time.perf_counter() - started


def median_ms(samples: list[float]) -> float:
    return statistics.median(samples) * 1000


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
            one = [await run_all(engine, chain(1), 1) for _ in range(REPEAT)]
            twenty = [await run_all(engine, chain(21), 1) for _ in range(REPEAT)]
            bare_one = [await bare(1) for _ in range(REPEAT)]
            bare_twenty = [await bare(21) for _ in range(REPEAT)]
            step = (median_ms(twenty) - median_ms(one)) / 20
            bare_step = (median_ms(bare_twenty) - median_ms(bare_one)) / 20
            print(f"launch (import + DBOS.launch): {launch:.2f} s")
            print(
                f"one-node run, start to completed (median of {REPEAT}): "
                f"{median_ms(one):.0f} ms; bare DBOS workflow of 1 step: "
                f"{median_ms(bare_one):.0f} ms"
            )
            print(
                f"per extra step (chain of 21 vs 1): {step:.1f} ms; bare DBOS step: "
                f"{bare_step:.1f} ms; Nexflow's share: {step - bare_step:.1f} ms"
            )
        n = 64
        elapsed = await run_all(engine, chain(2), n)
        print(
            f"concurrency {concurrency:>2}: {n} two-node runs in {elapsed:.2f} s "
            f"= {n / elapsed:.1f} runs/s"
        )
        await engine.close()


if __name__ == "__main__":
    asyncio.run(main())
