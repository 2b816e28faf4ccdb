from datetime import UTC, datetime, timedelta

import pytest
from flows_support import FakeHost, Script

from nexflow.flows import FlowEngine, RunControlError, load_flow_text
from nexflow.flows.engine import TERMINAL

BIG = """
name: big
inputs:
  n: {type: integer, default: 2}
nodes:
  fetch: {type: tool, tool: fetch, retry: {tries: 3, backoff_s: 0.05}}
  split: {type: fork, needs: [fetch]}
  left: {type: agent, needs: [split], prompt: "Summarize ${nodes.fetch.output}"}
  right: {type: tool, needs: [split], tool: flaky, on_error: report}
  report: {type: transform, expr: "'failed: ' + nodes.right.error"}
  join: {type: merge, needs: [left, right, report], strategy: all}
  check:
    {type: condition, needs: [join], if: "nodes.fetch.output.failed > inputs.n",
     then: [ask], else: [skip_me]}
  ask: {type: approval, title: "Re-run ${nodes.fetch.output.failed} jobs?", expires_s: 30}
  rerun: {type: tool, needs: [ask], tool: rerun}
  skip_me: {type: tool, tool: never}
  after_skip: {type: tool, needs: [skip_me], tool: never}
  done: {type: merge, needs: [rerun, after_skip]}
"""


async def test_big_flow_with_approval(engine: FlowEngine, host: FakeHost) -> None:
    host.scripts["fetch"] = Script(output={"failed": 3}, fail_times=2)
    host.scripts["flaky"] = Script(forever=True)
    host.scripts["rerun"] = Script(output="rerun ok")
    run_id = await engine.start(load_flow_text(BIG), {}, owner="u1", run_id="big-1")
    run = await engine.wait(run_id, timeout_s=20)
    assert run.status == "waiting", run
    assert host.asked == [("big-1", "ask", "Re-run 3 jobs?")]
    with pytest.raises(RunControlError):
        await engine.answer(run_id, "rerun", True, "u1")
    await engine.answer(run_id, "ask", True, "u1")
    run = await engine.wait(run_id, timeout_s=20, states=TERMINAL)
    assert run.status == "completed", run
    by_node = {n.node: n for n in run.nodes}
    assert by_node["fetch"].attempts == 3
    assert by_node["fetch"].status == "completed"
    assert by_node["right"].status == "failed"
    assert by_node["report"].output_preview == "failed: flaky failed (call 1)"
    assert by_node["skip_me"].status == "skipped"
    assert by_node["after_skip"].status == "skipped"
    assert by_node["done"].status == "completed"
    assert ("never", "skip_me", "big-1:skip_me:1") not in host.calls
    keys = [c[2] for c in host.calls]
    assert keys.count("big-1:fetch:1") == 1 and "big-1:fetch:3" in keys


async def test_declined_approval_fails_run(engine: FlowEngine, host: FakeHost) -> None:
    host.scripts["fetch"] = Script(output={"failed": 3})
    run_id = await engine.start(load_flow_text(BIG), {}, owner="u1")
    await engine.wait(run_id, timeout_s=20)
    await engine.answer(run_id, "ask", False, "u1")
    run = await engine.wait(run_id, timeout_s=20, states=TERMINAL)
    assert run.status == "failed"
    assert run.error == "node 'ask' failed: declined by u1"


async def test_expired_approval_takes_error_branch(engine: FlowEngine, host: FakeHost) -> None:
    flow = load_flow_text(
        """
name: expiring
nodes:
  ask: {type: approval, title: ok, expires_s: 0.3, on_error: fallback}
  fallback: {type: transform, expr: "nodes.ask.error"}
"""
    )
    run = await engine.wait(await engine.start(flow, {}, owner="u1"), timeout_s=20)
    assert run.status == "waiting"
    run = await engine.wait(run.run_id, timeout_s=20, states=TERMINAL)
    assert run.status == "completed", run
    assert run.output is not None and run.output["outputs"]["fallback"] == "approval expired"


async def test_timeout_and_host_exception_fail_the_node(engine: FlowEngine, host: FakeHost) -> None:
    host.scripts["sleepy"] = Script(output="late", delay_s=2)

    async def broken(*args: object) -> None:
        raise RuntimeError("secret internal detail")

    host.run_agent = broken  # type: ignore[method-assign,assignment]
    flow = load_flow_text(
        """
name: limits
nodes:
  slow: {type: tool, tool: sleepy, timeout_s: 0.2, on_error: continue}
  crashy: {type: agent, prompt: hi, on_error: continue, retry: {tries: 2, backoff_s: 0}}
"""
    )
    run = await engine.wait(await engine.start(flow, {}, owner="u1"), timeout_s=20)
    assert run.status == "completed"
    by_node = {n.node: n for n in run.nodes}
    assert by_node["slow"].error == "timed out after 0.2 s"
    assert by_node["crashy"].error == "internal error while running the node (see logs)"
    assert by_node["crashy"].attempts == 2
    assert await engine.list_runs("u1", status="failed") == []


async def test_wait_until_and_merge_any(engine: FlowEngine, host: FakeHost) -> None:
    host.scripts["slow"] = Script(output="slow", delay_s=0.5)
    host.scripts["fast"] = Script(output="fast")
    until = (datetime.now(UTC) + timedelta(seconds=0.3)).isoformat()
    flow = load_flow_text(
        f"""
name: timing
nodes:
  nap: {{type: wait, until: "{until}"}}
  fast: {{type: tool, tool: fast, needs: [nap]}}
  slow: {{type: tool, tool: slow, needs: [nap]}}
  first: {{type: merge, strategy: any, needs: [fast, slow]}}
"""
    )
    run = await engine.wait(await engine.start(flow, {}, owner="u1"), timeout_s=20, states=TERMINAL)
    assert run.status == "completed", run
    by_node = {n.node: n for n in run.nodes}
    assert by_node["nap"].status == "completed"
    assert run.output is not None
    assert run.output["outputs"]["first"] in ({"fast": "fast"}, {"fast": "fast", "slow": "slow"})
