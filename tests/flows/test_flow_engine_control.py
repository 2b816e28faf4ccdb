import asyncio
from pathlib import Path

import pytest
from flows_support import FakeHost, Script

from nexflow.flows import (
    EngineUnavailable,
    FlowEngine,
    RunControlError,
    RunNotFound,
    load_flow_text,
)
from nexflow.flows.engine import TERMINAL

CHAIN = """
name: chain
nodes:
  a: {type: tool, tool: a}
  b: {type: tool, tool: slow, needs: [a]}
  c: {type: tool, tool: c, needs: [b]}
"""


async def test_pause_resume_stop(engine: FlowEngine, host: FakeHost) -> None:
    host.scripts["slow"] = Script(output="slow", delay_s=0.5)
    run_id = await engine.start(load_flow_text(CHAIN), {}, owner="u1")
    for _ in range(200):
        if host.counts.get("slow"):
            break
        await asyncio.sleep(0.02)
    await engine.control(run_id, "pause", owner="u1")
    run = await engine.status(run_id, owner="u1")
    assert run.status == "paused"
    with pytest.raises(RunControlError):
        await engine.control(run_id, "pause")
    await asyncio.sleep(0.7)
    assert "c" not in host.counts
    await engine.control(run_id, "resume", owner="u1")
    run = await engine.wait(run_id, timeout_s=20, states=TERMINAL)
    assert run.status == "completed", run
    assert host.counts["c"] == 1

    host.scripts["slow"] = Script(output="slow", delay_s=5)
    second = await engine.start(load_flow_text(CHAIN), {}, owner="u1")
    await engine.control(second, "stop")
    run = await engine.status(second)
    assert run.status == "cancelled"
    with pytest.raises(RunControlError):
        await engine.control(second, "resume")


async def test_retry_from_failed_node_and_fork(engine: FlowEngine, host: FakeHost) -> None:
    host.scripts["slow"] = Script(forever=True)
    run_id = await engine.start(load_flow_text(CHAIN), {}, owner="u1", run_id="r1")
    run = await engine.wait(run_id, timeout_s=20)
    assert run.status == "failed"
    assert run.error == "node 'b' failed: slow failed (call 1)"
    assert run.progress == 66
    host.scripts["slow"] = Script(output="fixed")
    retried = await engine.control(run_id, "retry", owner="u1")
    assert retried != run_id
    run2 = await engine.wait(retried, timeout_s=20)
    assert run2.status == "completed", run2
    assert run2.forked_from == run_id
    assert host.counts["a"] == 1  # reused, not run again
    assert [n.status for n in run2.nodes] == ["completed"] * 3

    forked = await engine.fork(retried, "c", owner="u1")
    run3 = await engine.wait(forked, timeout_s=20)
    assert run3.status == "completed"
    assert host.counts == {"a": 1, "slow": 2, "c": 2}
    with pytest.raises(RunControlError):
        await engine.control(forked, "retry")
    with pytest.raises(RunNotFound):
        await engine.status(forked, owner="someone-else")
    runs = await engine.list_runs("u1")
    assert {r.run_id for r in runs} == {run_id, retried, forked}
    stats = await engine.stats("u1")
    assert stats.by_status == {"failed": 1, "completed": 2}
    assert await engine.list_runs("nobody") == []


async def test_budget_stops_run(engine: FlowEngine, host: FakeHost) -> None:
    flow = load_flow_text(
        """
name: runaway
budget_tokens: 100
nodes:
  a1: {type: agent, prompt: think}
  a2: {type: agent, prompt: "more ${nodes.a1.output}", needs: [a1]}
  a3: {type: agent, prompt: more, needs: [a2]}
  a4: {type: agent, prompt: more, needs: [a3]}
"""
    )
    for n in ("a1", "a2", "a3", "a4"):
        host.scripts[f"agent:{n}"] = Script(output="...", tokens=40)
    run = await engine.wait(await engine.start(flow, {}, owner="u1"), timeout_s=20)
    assert run.status == "failed"
    assert run.error == "token budget exceeded: used 120 of 100"
    assert "agent:a4" not in host.counts
    with pytest.raises(RunControlError, match="nothing to retry"):
        await engine.control(run.run_id, "retry")


async def test_subflow_and_wait(engine: FlowEngine, host: FakeHost) -> None:
    host.flows["child"] = """
name: child
inputs:
  x: {type: integer, required: true}
nodes:
  pause: {type: wait, seconds: 0.2}
  double: {type: transform, needs: [pause], expr: "inputs.x * 2"}
"""
    flow = load_flow_text(
        """
name: parent
nodes:
  sub: {type: flow, flow: child, args: {x: 21}}
  missing: {type: flow, flow: nope, on_error: continue}
  out: {type: transform, needs: [sub, missing], expr: "nodes.sub.output.double"}
"""
    )
    run = await engine.wait(await engine.start(flow, {}, owner="u1"), timeout_s=20, states=TERMINAL)
    assert run.status == "completed", run
    assert run.output is not None and run.output["outputs"]["out"] == 42
    by_node = {n.node: n for n in run.nodes}
    assert by_node["missing"].error == "no flow 'nope'"


async def test_start_is_idempotent_and_checks_inputs(engine: FlowEngine, host: FakeHost) -> None:
    flow = load_flow_text(CHAIN)
    first = await engine.start(flow, {}, owner="u1", run_id="same")
    again = await engine.start(flow, {}, owner="u1", run_id="same")
    assert first == again == "same"
    with pytest.raises(RunControlError):
        await engine.start(flow, {}, owner="intruder", run_id="same")
    with pytest.raises(RunControlError):
        await engine.start(flow, {"nope": 1}, owner="u1")
    with pytest.raises(RunControlError):
        await engine.start(flow, {}, owner="u1", priority=9)
    await engine.wait("same", timeout_s=20)
    assert host.counts["a"] == 1


async def test_second_engine_refused_then_relaunch(tmp_path: Path) -> None:
    host = FakeHost()
    first = FlowEngine(host, home=tmp_path / "one", queue_poll_s=0.05, notify_poll_s=0.05)
    second = FlowEngine(host, home=tmp_path / "two")
    try:
        await first.list_runs()
        with pytest.raises(EngineUnavailable):
            await second.list_runs()
    finally:
        await first.close()
    try:
        run_id = await second.start(load_flow_text(CHAIN), {}, owner="u1")
        assert (await second.wait(run_id, timeout_s=20)).status == "completed"
    finally:
        await second.close()


async def test_close_gives_the_loop_its_executor_back(tmp_path: Path) -> None:
    # DBOS installs its own default executor on the loop and shuts it down on destroy.
    engine = FlowEngine(FakeHost(), home=tmp_path / "h")
    await engine.list_runs()
    await engine.close()
    assert await asyncio.to_thread(lambda: 42) == 42


async def test_close_mid_run_and_relaunch_resumes(tmp_path: Path) -> None:
    """Gateways start and stop in one process: a run left mid-way by close() resumes
    when an engine with the same home and executor id launches again."""
    host = FakeHost(scripts={"slow": Script(output="s", delay_s=0.4)})
    home = tmp_path / "home"
    first = FlowEngine(host, home=home, queue_poll_s=0.05, notify_poll_s=0.05)
    run_id = await first.start(load_flow_text(CHAIN), {}, owner="u1", run_id="keep")
    for _ in range(500):
        if host.counts.get("slow"):
            break
        await asyncio.sleep(0.01)
    await first.close()
    assert "c" not in host.counts
    second = FlowEngine(host, home=home, queue_poll_s=0.05, notify_poll_s=0.05)
    try:
        run = await second.wait(run_id, timeout_s=20, states=TERMINAL)
        assert run.status == "completed", run
        assert host.counts["a"] == 1
        assert host.counts["c"] == 1
        # the interrupted call was made again with the same key (at least once)
        assert {key for _, node, key in host.calls if node == "b"} == {"keep:b:1"}
    finally:
        await second.close()


async def test_recursive_subflow_stops_at_depth(engine: FlowEngine, host: FakeHost) -> None:
    host.flows["loop"] = "name: loop\nnodes:\n  again: {type: flow, flow: loop}\n"
    run = await engine.wait(
        await engine.start(load_flow_text(host.flows["loop"]), {}, owner="u1"),
        timeout_s=30,
        states=TERMINAL,
    )
    assert run.status == "failed"
    assert run.error is not None and "sub-flows nested too deep" in run.error
