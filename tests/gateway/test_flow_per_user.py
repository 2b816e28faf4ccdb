"""Per-user concurrency through the gateway: ``flows.per_user_concurrency`` queues a
user's extra run (shown as waiting for a free slot) and does not hold up another user."""

from __future__ import annotations

from pathlib import Path

from nexflow.flows.engine import TERMINAL
from nexflow.flows.host import Origin
from nexflow.gateway.commands_flows import Where, task_card
from nexflow.testing.harness import GatewayHarness

HOLD = "name: hold\nnodes:\n  ask: {type: approval, title: 'go?'}\n"
QUICK = "name: quick\nnodes:\n  t: {type: tool, tool: get_time}\n"


async def test_flow_per_user_limit_in_the_gateway(tmp_path: Path) -> None:
    env = {"NEXFLOW_FLOWS__PER_USER_CONCURRENCY": "1", "NEXFLOW_FLOWS__QUEUE_POLL_S": "0.05"}
    async with GatewayHarness(tmp_path, env=env) as gw:
        assert gw.app is not None and gw.app.flows is not None
        flows = gw.app.flows
        await gw.chat("hello")
        found = await gw.app.storage.find_user("web", "owner")
        assert found is not None
        owner = found[0]
        bob = await gw.app.storage.create_user("bob", "user", "telegram", "902")
        await flows.save_flow(owner, "hold", HOLD)
        await flows.save_flow(bob, "quick", QUICK)
        engine = await flows.engine()
        first = await flows.start(owner, "hold", {}, Origin("web"))
        assert (await engine.wait(first, owner=owner, timeout_s=20)).status == "waiting"
        second = await flows.start(owner, "hold", {}, Origin("web"))
        other = await flows.start(bob, "quick", {}, Origin("web"))
        done = await engine.wait(other, owner=bob, timeout_s=20, states=TERMINAL)
        assert done.status == "completed", done
        assert (await flows.run(owner, second)).status == "queued"
        listing = (await gw.chat("/tasks"))["reply"]
        line = next(t for t in listing.splitlines() if second[:8] in t)
        assert "waiting for a free slot" in line, listing
        card = task_card(await flows.run(owner, second), Where(owner, "web", "", None, "ru"))
        assert "ждёт свободного слота" in card.text, card.text
        await engine.answer(first, "ask", True, by=owner)
        assert (await engine.wait(second, owner=owner, timeout_s=20)).status == "waiting"
