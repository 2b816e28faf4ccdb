"""The gateway's flow host through a real gateway (web channel, the scripted model):
owned tools, no auto-approval, tainting, idempotent tool calls, owned runs, saving flows."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Mapping
from pathlib import Path
from typing import Any

import pytest

from nexflow.flows import FlowInvalid, NodeResult, Origin, RunInfo, RunNotFound
from nexflow.gateway.flows import FlowArgsError, FlowNotFound, FlowService
from nexflow.testing.harness import GatewayHarness
from nexflow.tools.base import ToolContext, ToolResult, ToolSpec


class CountingTool:
    """A test tool: counts its calls; ``fail`` first calls fail; may ask to confirm."""

    def __init__(
        self,
        name: str,
        *,
        fail: int = 0,
        effects: frozenset[Any] = frozenset(),
        untrusted: bool = False,
        confirm: bool = False,
    ) -> None:
        self.spec = ToolSpec(name, f"test tool {name}", effects=effects, untrusted_output=untrusted)
        self.calls: list[dict[str, Any]] = []
        self._fail = fail
        self._confirm = confirm

    async def run(self, args: Mapping[str, Any], ctx: ToolContext) -> ToolResult:
        asked = self._confirm and (
            ctx.confirm is None or not await ctx.confirm(f"Run {self.spec.name}?", "{}")
        )
        if asked:
            return ToolResult("error: refused", is_error=True)
        self.calls.append(dict(args))
        if len(self.calls) <= self._fail:
            return ToolResult(f"error: {self.spec.name} failed (call {len(self.calls)})", True)
        return ToolResult("ok", data={"value": len(self.calls), "args": dict(args)})


@pytest.fixture
async def gw(tmp_path: Path) -> AsyncIterator[GatewayHarness]:
    async with GatewayHarness(tmp_path) as harness:
        yield harness


async def owner_of(gw: GatewayHarness) -> str:
    await gw.chat("hello")
    assert gw.app is not None
    found = await gw.app.storage.find_user("web", "owner")
    assert found is not None
    return found[0]


def service(gw: GatewayHarness) -> FlowService:
    assert gw.app is not None and gw.app.flows is not None
    return gw.app.flows


def add(gw: GatewayHarness, *tools: CountingTool) -> None:
    assert gw.app is not None
    for tool in tools:
        gw.app.tools.builtins.add(tool)


async def test_flow_host_saves_validates_and_lists_flows(gw: GatewayHarness) -> None:
    user = await owner_of(gw)
    flows = service(gw)
    bad = "name: broken\nnodes:\n  a: {type: tool}\n"
    with pytest.raises(FlowInvalid) as info:
        await flows.save_flow(user, "broken", bad)
    assert any(str(i).startswith("flows/broken.yaml:3:") for i in info.value.issues)
    saved = await flows.save_flow(
        user, "hello", "name: hello\ndescription: hi\nnodes:\n  t: {type: tool, tool: get_time}\n"
    )
    assert saved.valid and saved.path == "flows/hello.yaml"
    listed = await flows.list_flows(user)
    assert [(f.name, f.valid) for f in listed] == [("hello", True)]
    with pytest.raises(FlowNotFound):
        await flows.start(user, "nope", {}, Origin("web"))
    assert gw.app is not None and gw.app.workspaces is not None
    svc = await gw.app.workspaces.service()
    assert await svc.read_file(user, "flows/hello.yaml") is not None
    assert await svc.read_file(user, "flows/broken.yaml") is None  # invalid: nothing written


async def test_flow_host_runs_are_owned(gw: GatewayHarness) -> None:
    user = await owner_of(gw)
    assert gw.app is not None
    other = await gw.app.storage.create_user("bob", "user", "telegram", "777")
    flows = service(gw)
    text = (
        "name: one\ninputs:\n  n: {type: integer, required: true}\n"
        "nodes:\n  t: {type: tool, tool: get_time}\n"
    )
    await flows.save_flow(user, "one", text)
    with pytest.raises(FlowArgsError):
        await flows.start(user, "one", {}, Origin("web"))
    run_id = await flows.start(user, "one", {"n": 1}, Origin("web"))
    engine = await flows.engine()
    done = await engine.wait(run_id, owner=user, timeout_s=20)
    assert done.status == "completed", done
    with pytest.raises(RunNotFound):
        await flows.run(other, run_id)
    with pytest.raises(RunNotFound):
        await flows.control(other, run_id, "retry")
    assert [r.run_id for r in await flows.runs(other)] == []
    assert [r.run_id for r in await flows.runs(user)] == [run_id]
    assert (await flows.stats(user)).total == 1


async def test_flow_host_refuses_a_confirmed_tool_without_an_approval_node(
    gw: GatewayHarness,
) -> None:
    user = await owner_of(gw)
    deploy = CountingTool("deploy_test", confirm=True, effects=frozenset({"write"}))
    add(gw, deploy)
    flows = service(gw)
    await flows.save_flow(
        user, "ship", "name: ship\nnodes:\n  d: {type: tool, tool: deploy_test}\n"
    )
    run_id = await flows.start(user, "ship", {}, Origin("web"))
    done = await (await flows.engine()).wait(run_id, owner=user, timeout_s=20)
    assert done.status == "failed"
    (node,) = done.nodes
    assert node.error is not None and "`approval` node" in node.error
    assert deploy.calls == []

    gated = (
        "name: ship2\nnodes:\n  ask: {type: approval, title: 'Deploy?'}\n"
        "  d: {type: tool, tool: deploy_test, needs: [ask]}\n"
    )
    await flows.save_flow(user, "ship2", gated)
    run_id = await flows.start(user, "ship2", {}, Origin("web"))
    engine = await flows.engine()
    assert (await engine.wait(run_id, owner=user, timeout_s=20)).status == "waiting"
    assert gw.app is not None
    (pending,) = await gw.app.storage.approvals_for(user)
    resp = await gw.http.post(f"/api/v1/confirmations/{pending.id}", json={"approve": True})
    assert resp.json() == {"outcome": "approved"}
    done = await engine.wait(run_id, owner=user, timeout_s=20, states=("completed", "failed"))
    assert done.status == "completed", done
    assert len(deploy.calls) == 1


async def test_flow_host_taint_needs_an_approval_after_it(gw: GatewayHarness) -> None:
    user = await owner_of(gw)
    fetch = CountingTool("fetch_test", untrusted=True)
    write = CountingTool("write_test", effects=frozenset({"write"}))
    add(gw, fetch, write)
    flows = service(gw)
    text = (
        "name: taint\nnodes:\n"
        "  f: {type: tool, tool: fetch_test}\n"
        "  w: {type: tool, tool: write_test, needs: [f]}\n"
    )
    await flows.save_flow(user, "taint", text)
    run_id = await flows.start(user, "taint", {}, Origin("web"))
    engine = await flows.engine()
    done = await engine.wait(run_id, owner=user, timeout_s=20)
    assert done.status == "failed"
    assert write.calls == [] and len(fetch.calls) == 1
    w = next(n for n in done.nodes if n.node == "w")
    assert w.error is not None and "approval" in w.error

    approved = (
        "name: taint2\nnodes:\n"
        "  f: {type: tool, tool: fetch_test}\n"
        "  ask: {type: approval, title: 'Write it?', needs: [f]}\n"
        "  w: {type: tool, tool: write_test, needs: [ask]}\n"
    )
    await flows.save_flow(user, "taint2", approved)
    run_id = await flows.start(user, "taint2", {}, Origin("web"))
    waiting = await engine.wait(run_id, owner=user, timeout_s=20)
    assert waiting.status == "waiting"
    assert gw.app is not None
    (pending,) = await gw.app.storage.approvals_for(user)
    other = await gw.app.storage.create_user("mallory", "user", "telegram", "779")
    approvals = service(gw)._host._approvals
    assert await approvals.answer(pending.id, other, True) == "not_yours"
    resp = await gw.http.post(f"/api/v1/confirmations/{pending.id}", json={"approve": True})
    assert resp.status_code < 300, resp.text
    done = await engine.wait(run_id, owner=user, timeout_s=20, states=("completed", "failed"))
    assert done.status == "completed", done
    assert len(write.calls) == 1
    again = await gw.http.post(f"/api/v1/confirmations/{pending.id}", json={"approve": True})
    assert (again.status_code, again.json()) == (410, {"outcome": "expired"})  # answered


async def test_flow_host_counts_approvals_and_taint_by_graph_position(
    gw: GatewayHarness,
) -> None:
    """An approval answered yes on a parallel branch does not clear a node, however early
    it was answered; untrusted output on a branch a node cannot read does not gate it."""
    user = await owner_of(gw)
    deploy = CountingTool("deploy_pos", confirm=True, effects=frozenset({"write"}))
    side = CountingTool("fetch_pos", untrusted=True)
    write = CountingTool("write_pos", effects=frozenset({"write"}))
    add(gw, deploy, side, write)
    flows = service(gw)
    text = (
        "name: pos\nnodes:\n"
        "  ask: {type: approval, title: 'Something else?'}\n"
        "  side: {type: tool, tool: fetch_pos}\n"
        "  pause: {type: wait, seconds: 3}\n"
        "  d: {type: tool, tool: deploy_pos, needs: [pause]}\n"
        "  w: {type: tool, tool: write_pos, needs: [pause]}\n"
    )
    await flows.save_flow(user, "pos", text)
    run_id = await flows.start(user, "pos", {}, Origin("web"))
    engine = await flows.engine()
    assert gw.app is not None
    for _ in range(200):  # a root: asked at once
        if asked := await gw.app.storage.approvals_for(user):
            break
        await asyncio.sleep(0.05)
    (pending,) = asked
    resp = await gw.http.post(f"/api/v1/confirmations/{pending.id}", json={"approve": True})
    assert resp.json() == {"outcome": "approved"}
    done = await engine.wait(run_id, owner=user, timeout_s=30, states=("completed", "failed"))
    nodes = {n.node: n for n in done.nodes}
    assert nodes["ask"].status == "completed" and nodes["side"].untrusted == ("fetch_pos",)
    # answered before `d` ran, but not on its path: refused
    assert nodes["d"].status == "failed" and "`approval` node" in (nodes["d"].error or "")
    assert deploy.calls == []
    # the run saw untrusted output, but not on `w`'s path: the write needs nothing
    assert nodes["w"].status == "completed", nodes["w"]
    assert len(write.calls) == 1
    assert done.untrusted == ("fetch_pos",)


async def test_flow_host_expired_approval_fails_the_node_and_says_so(gw: GatewayHarness) -> None:
    user = await owner_of(gw)
    flows = service(gw)
    text = "name: soon\nnodes:\n  ask: {type: approval, title: 'Quick?', expires_s: 0.5}\n"
    await flows.save_flow(user, "soon", text)
    run_id = await flows.start(user, "soon", {}, Origin("web"))
    engine = await flows.engine()
    done = await engine.wait(run_id, owner=user, timeout_s=20, states=("completed", "failed"))
    assert done.status == "failed"
    asked = await _flow_approval(gw, run_id)
    resp = await gw.http.post(f"/api/v1/confirmations/{asked}", json={"approve": True})
    assert (resp.status_code, resp.json()) == (410, {"outcome": "expired"})


async def _flow_approval(gw: GatewayHarness, run_id: str) -> str:
    """The id of the run's approval, from its audit record (no longer pending)."""
    assert gw.app is not None
    rows = await gw.app.storage.audit_tail(50, "confirmation")
    (row,) = [r for r in rows if run_id in r["data"]["detail"] and r["outcome"] == "requested"]
    return str(row["data"]["id"])


async def test_flow_host_dedupes_tool_calls_on_the_idempotency_key(gw: GatewayHarness) -> None:
    user = await owner_of(gw)
    tool = CountingTool("count_test")
    add(gw, tool)
    host = service(gw)._host  # the host as the engine calls it
    run = RunInfo("r1", "x", user, Origin("web"))
    first = await host.call_tool(run, "n", "count_test", {"a": 1}, "r1:n:1")
    second = await host.call_tool(run, "n", "count_test", {"a": 1}, "r1:n:1")
    assert first == second == NodeResult(True, {"value": 1, "args": {"a": 1}}, tool_calls=1)
    assert len(tool.calls) == 1
    other = await host.call_tool(run, "n", "count_test", {"a": 1}, "r1:n:2")
    assert other.output["value"] == 2


async def test_flow_host_does_not_offer_another_users_tools(gw: GatewayHarness) -> None:
    await owner_of(gw)
    assert gw.app is not None
    other = await gw.app.storage.create_user("bob", "user", "telegram", "778")
    host = service(gw)._host
    result = await host.call_tool(
        RunInfo("r2", "x", other, Origin("web")), "n", "no_such_tool", {}, "r2:n:1"
    )
    assert not result.ok and "no tool named 'no_such_tool'" in (result.error or "")


async def test_an_answer_its_paused_node_cannot_take_is_expired_and_not_redelivered(
    gw: GatewayHarness,
) -> None:
    """The user hears "expired" and the stored answer says so: a restart's redelivery of
    answers a crash kept from their node must not apply it after all."""
    user = await owner_of(gw)
    flows = service(gw)
    text = "name: later\nnodes:\n  ask: {type: approval, title: 'Go?'}\n"
    await flows.save_flow(user, "later", text)
    run_id = await flows.start(user, "later", {}, Origin("web"))
    engine = await flows.engine()
    assert (await engine.wait(run_id, owner=user, timeout_s=20)).status == "waiting"
    await flows.control(user, run_id, "pause")
    assert gw.app is not None
    (pending,) = await gw.app.storage.approvals_for(user)
    resp = await gw.http.post(f"/api/v1/confirmations/{pending.id}", json={"approve": True})
    assert (resp.status_code, resp.json()) == (410, {"outcome": "expired"})
    assert await gw.app.storage.answered_flow_approvals() == []
