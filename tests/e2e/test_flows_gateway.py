"""A flow end to end through the gateway and Telegram (fake Bot API, scripted model):
fork/merge, a condition, a tool that fails twice then succeeds on retry, one that fails
for good into its error branch, an agent node, an approval answered with the button —
and the same approval answered after a gateway restart."""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pytest

from nexflow.flows import Origin, RunNotFound
from nexflow.gateway.flows import FlowService
from nexflow.testing.channels import running_telegram
from nexflow.testing.fake_llm import Reply
from nexflow.testing.fake_telegram import FakeTelegram
from nexflow.testing.harness import GatewayHarness
from nexflow.tools.base import ToolContext, ToolResult, ToolSpec

OWNER = 4242
CONFIG = {
    "security": {"owner": {"telegram": [str(OWNER)]}},
    "outbox": {"initial_backoff_s": 0.1, "max_backoff_s": 0.5},
}

FLOW = """\
name: triage
description: the issue's flow
inputs:
  n: {type: integer, default: 2}
nodes:
  start: {type: fork}
  flaky:
    {type: tool, needs: [start], tool: flaky_e2e, args: {n: "${inputs.n}"},
     retry: {tries: 3, backoff_s: 0.05}}
  broken: {type: tool, needs: [start], tool: broken_e2e, on_error: recover}
  recover: {type: transform, expr: "'recovered: ' + nodes.broken.error"}
  summarize: {type: agent, needs: [flaky], prompt: "Summarize ${nodes.flaky.output}", tools: []}
  check: {type: condition, needs: [summarize], if: "nodes.flaky.output.value > 2",
          then: [ask], else: [nothing]}
  nothing: {type: transform, expr: "'not asked'"}
  ask: {type: approval, title: "Ship build ${inputs.n}?"}
  ship: {type: tool, needs: [ask], tool: flaky_e2e, args: {ship: true}}
  done: {type: merge, needs: [ship, recover, nothing], strategy: all}
"""


class Flaky:
    """Fails its first ``fail`` calls, then answers with its call count."""

    def __init__(self, name: str, fail: int) -> None:
        self.spec = ToolSpec(name, f"test tool {name}")
        self.calls = 0
        self._fail = fail

    async def run(self, args: Mapping[str, Any], ctx: ToolContext) -> ToolResult:
        self.calls += 1
        if self.calls <= self._fail:
            return ToolResult(f"error: backend down (call {self.calls})", is_error=True)
        return ToolResult("ok", data={"value": self.calls, "args": dict(args)})


def flows_of(gw: GatewayHarness) -> FlowService:
    assert gw.app is not None and gw.app.flows is not None
    return gw.app.flows


async def owner_id(gw: GatewayHarness, fake: FakeTelegram) -> str:
    fake.message(OWNER, "hello")
    await fake.wait_sent(1, within=10)
    assert gw.app is not None
    found = await gw.app.storage.find_user("telegram", str(OWNER))
    assert found is not None
    return found[0]


def register(gw: GatewayHarness) -> tuple[Flaky, Flaky]:
    assert gw.app is not None
    flaky, broken = Flaky("flaky_e2e", fail=2), Flaky("broken_e2e", fail=99)
    gw.app.tools.builtins.add(flaky)
    gw.app.tools.builtins.add(broken)
    return flaky, broken


async def test_flows_gateway_issue_flow_end_to_end(tmp_path: Path) -> None:
    async with running_telegram(tmp_path, config=CONFIG) as (gw, fake):
        user = await owner_id(gw, fake)
        flaky, broken = register(gw)
        flows = flows_of(gw)
        await flows.save_flow(user, "triage", FLOW)
        gw.llm.push(Reply(text="all green"))
        run_id = await flows.start(user, "triage", {"n": 7}, Origin("telegram", str(OWNER)))
        engine = await flows.engine()
        waiting = await engine.wait(run_id, owner=user, timeout_s=30)
        assert waiting.status == "waiting", waiting
        await fake.wait_for(lambda: any("Ship build 7?" in s.text for s in fake.sent), 10)
        card = next(s for s in fake.sent if "Ship build 7?" in s.text)
        assert flaky.calls == 3 and broken.calls == 1
        # another user can neither see nor control the run, nor answer its card
        assert gw.app is not None
        other = await gw.app.storage.create_user("eve", "user", "telegram", "999")
        assert [r.run_id for r in await flows.runs(other)] == []
        for action in ("pause", "stop"):
            with pytest.raises(RunNotFound):
                await flows.control(other, run_id, action)
        with pytest.raises(RunNotFound):
            await flows.run(other, run_id)
        confirm = next(b for b in card.buttons if "onfirm" in b["text"])
        fake.press(card, confirm["callback_data"], user_id=OWNER)
        done = await engine.wait(run_id, owner=user, timeout_s=30, states=("completed", "failed"))
        assert done.status == "completed", done
        nodes = {n.node: n for n in done.nodes}
        assert nodes["flaky"].attempts == 3 and nodes["flaky"].status == "completed"
        assert nodes["broken"].status == "failed"
        assert nodes["recover"].status == "completed"
        assert "recovered: error: backend down" in nodes["recover"].output_preview
        assert nodes["summarize"].output_preview == "all green"
        assert nodes["summarize"].tokens_in > 0
        assert nodes["nothing"].status == "skipped"
        assert nodes["ask"].status == "completed" and nodes["ship"].status == "completed"
        assert nodes["done"].status == "completed"
        assert flaky.calls == 4  # three tries, then ship; nothing ran twice


async def test_flows_gateway_approval_survives_a_restart(tmp_path: Path) -> None:
    flow = (
        "name: later\nnodes:\n"
        "  ask: {type: approval, title: 'Go on after the restart?'}\n"
        "  after: {type: transform, needs: [ask], expr: \"'went on'\"}\n"
    )
    async with running_telegram(tmp_path, config=CONFIG) as (gw, fake):
        user = await owner_id(gw, fake)
        flows = flows_of(gw)
        await flows.save_flow(user, "later", flow)
        run_id = await flows.start(user, "later", {}, Origin("telegram", str(OWNER)))
        engine = await flows.engine()
        assert (await engine.wait(run_id, owner=user, timeout_s=30)).status == "waiting"
        await fake.wait_for(lambda: any("after the restart" in s.text for s in fake.sent), 10)
        assert gw.app is not None
        (pending,) = await gw.app.storage.approvals_for(user)
    async with running_telegram(tmp_path, config=CONFIG) as (gw, fake2):
        flows = flows_of(gw)
        for _ in range(100):  # unfinished runs: the engine starts in the background
            if flows.running:
                break
            await asyncio.sleep(0.05)
        assert flows.running
        fake2.message(OWNER, f"/confirm {pending.id}")
        engine = await flows.engine()
        done = await engine.wait(run_id, owner=user, timeout_s=30, states=("completed", "failed"))
        assert done.status == "completed", done
        assert not any("after the restart" in s.text for s in fake2.sent)  # asked once
