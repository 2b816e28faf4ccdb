"""Subprocess for the crash test: runs flows until done; the test SIGKILLs it at random.

Usage: python flows_crash_worker.py HOME RUNS
Side effects go to HOME/effects.jsonl, applied at most once per idempotency key (as a
real service would dedupe); every call, duplicate or not, goes to HOME/calls.jsonl.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from nexflow.flows import (
    FlowEngine,
    NodeResult,
    RunControlError,
    RunInfo,
    load_flow_text,
)
from nexflow.flows.engine import TERMINAL

FLOW = """
name: crashy
nodes:
  fetch: {type: tool, tool: fetch}
  split: {type: fork, needs: [fetch]}
  left: {type: tool, tool: left, needs: [split]}
  right: {type: agent, prompt: "go ${nodes.fetch.output}", needs: [split]}
  join: {type: merge, needs: [left, right]}
  nap: {type: wait, seconds: 0.3, needs: [join]}
  ask: {type: approval, title: "Ship it?", needs: [nap]}
  ship: {type: tool, tool: ship, needs: [ask]}
"""


class DedupeHost:
    def __init__(self, home: Path) -> None:
        self.effects = home / "effects.jsonl"
        self.calls = home / "calls.jsonl"
        self.applied: set[str] = set()
        if self.effects.exists():
            self.applied = {json.loads(x)["key"] for x in self.effects.read_text().splitlines()}

    def _write(self, path: Path, line: dict[str, Any]) -> None:
        with path.open("a") as f:
            f.write(json.dumps(line) + "\n")
            f.flush()

    async def _effect(self, key: str, node: str) -> NodeResult:
        await asyncio.sleep(0.15)
        self._write(self.calls, {"key": key})
        if key not in self.applied:
            self.applied.add(key)
            self._write(self.effects, {"key": key, "node": node})
        await asyncio.sleep(0.15)
        return NodeResult(ok=True, output={"node": node}, tokens_in=1)

    async def call_tool(
        self, run: RunInfo, node: str, tool: str, args: Mapping[str, Any], idempotency_key: str
    ) -> NodeResult:
        return await self._effect(idempotency_key, node)

    async def run_agent(
        self,
        run: RunInfo,
        node: str,
        prompt: str,
        tools: Sequence[str] | None,
        route: str | None,
        idempotency_key: str,
    ) -> NodeResult:
        return await self._effect(idempotency_key, node)

    async def ask(self, run: RunInfo, node: str, title: str, detail: str) -> None:
        await self._effect(f"ask:{run.run_id}:{node}", node)

    def load_flow(self, owner: str, name: str) -> Any:
        raise NotImplementedError


async def main(home: Path, runs: int) -> None:
    engine = FlowEngine(
        DedupeHost(home),
        home=home,
        executor_id="crash-test",
        concurrency=runs,
        queue_poll_s=0.05,
        notify_poll_s=0.05,
    )
    flow = load_flow_text(FLOW)
    ids = [await engine.start(flow, {}, owner="u", run_id=f"run{i}") for i in range(runs)]
    print("started", flush=True)
    pending = set(ids)
    while pending:
        for run_id in list(pending):
            run = await engine.status(run_id)
            if run.status in TERMINAL:
                pending.discard(run_id)
            elif any(n.node == "ask" and n.status == "waiting" for n in run.nodes):
                with contextlib.suppress(RunControlError):  # answered meanwhile
                    await engine.answer(run_id, "ask", True, "u")
        await asyncio.sleep(0.05)
    result = {r: (await engine.status(r)).status for r in ids}
    await engine.close()
    print("DONE " + json.dumps(result), flush=True)


if __name__ == "__main__":
    asyncio.run(main(Path(sys.argv[1]), int(sys.argv[2])))
