import asyncio
from pathlib import Path

from flows_support import FakeHost, Script

from nexflow.flows import FlowEngine, load_flow_text
from nexflow.flows.engine import TERMINAL

ONE = """
name: one
inputs:
  tag: {type: string, required: true}
nodes:
  work: {type: tool, tool: work, args: {tag: "${inputs.tag}"}}
"""

PARALLEL = """
name: parallel
nodes:
  go: {type: fork}
  a: {type: tool, tool: slow_a, needs: [go]}
  b: {type: tool, tool: slow_b, needs: [go]}
  c: {type: tool, tool: slow_c, needs: [go]}
  join: {type: merge, needs: [a, b, c]}
"""


async def test_priority_5_overtakes_queued_priority_1(tmp_path: Path) -> None:
    host = FakeHost(scripts={"work": Script(output="ok", delay_s=0.3)})
    engine = FlowEngine(
        host, home=tmp_path / "h", concurrency=1, queue_poll_s=0.05, notify_poll_s=0.05
    )
    flow = load_flow_text(ONE)
    order: list[str] = []
    first_call = asyncio.Event()
    original = host.call_tool

    async def recording(run, node, tool, args, key):  # type: ignore[no-untyped-def]
        order.append(args["tag"])
        first_call.set()
        return await original(run, node, tool, args, key)

    host.call_tool = recording  # type: ignore[method-assign]
    try:
        first = await engine.start(flow, {"tag": "blocker"}, owner="u", priority=1)
        await asyncio.wait_for(first_call.wait(), 20)
        low = [
            await engine.start(flow, {"tag": f"low{i}"}, owner="u", priority=1) for i in range(3)
        ]
        high = await engine.start(flow, {"tag": "high"}, owner="u", priority=5)
        assert (await engine.status(high)).status == "queued"
        assert (await engine.status(high)).priority == 5
        for run_id in [first, *low, high]:
            assert (await engine.wait(run_id, timeout_s=20, states=TERMINAL)).status == "completed"
        assert order[:2] == ["blocker", "high"]
        assert sorted(order[2:]) == ["low0", "low1", "low2"]
    finally:
        await engine.close()


async def test_parallel_branches_run_concurrently(engine: FlowEngine, host: FakeHost) -> None:
    for name in ("slow_a", "slow_b", "slow_c"):
        host.scripts[name] = Script(output=name, delay_s=0.5)
    run = await engine.wait(
        await engine.start(load_flow_text(PARALLEL), {}, owner="u"), timeout_s=20
    )
    assert run.status == "completed"
    spans = [(n.started_at, n.finished_at) for n in run.nodes if n.node in ("a", "b", "c")]
    assert max(s for s, _ in spans if s) < min(f for _, f in spans if f)  # all overlap
    assert run.output is not None
    assert run.output["outputs"]["join"] == {"a": "slow_a", "b": "slow_b", "c": "slow_c"}
