"""Panels in conversation: slash commands, button presses, and the model opening a panel."""

import json

from nexflow.testing.fake_llm import Reply, callable_tools
from nexflow.testing.harness import GatewayHarness


async def test_panel_commands_and_press(gateway: GatewayHarness) -> None:
    listing = await gateway.chat("/panels")
    assert "server-monitor" in listing["reply"] and "No panels are open" in listing["reply"]
    opened = await gateway.chat("/panel new server-monitor")
    assert opened["reply"].startswith("[panel server-monitor]")
    assert gateway.app is not None
    outbox = await gateway.app.storage.outbox_for_inbox(opened["message_id"])
    assert outbox is not None and outbox.outbound.kind == "panel_snapshot"
    buttons = {b.label: b.action for b in outbox.outbound.buttons}  # type: ignore[union-attr]
    assert "Emergency Restart" in buttons
    pressed = await gateway.chat(f"/press {buttons['Emergency Restart']}")
    after = await gateway.app.storage.outbox_for_inbox(pressed["message_id"])
    assert after is not None and "rebooting" in after.outbound.text  # type: ignore[union-attr]
    state = (await gateway.http.get("/api/v1/panels/server-monitor")).json()["state"]
    assert state["status"] == "rebooting"
    missing = await gateway.chat("/panel nope")
    assert "Panel error" in missing["reply"]
    assert gateway.llm.requests == []


async def test_model_opens_a_panel_and_uses_its_tool(gateway: GatewayHarness) -> None:
    gateway.llm.push(Reply(tool_calls=(("panel_open", {"template": "todo"}),)))
    opened = await gateway.chat("open my todo list")
    result = opened["tool_calls"][0]["result"]
    assert opened["tool_calls"][0]["ok"] and "Its tools:" in result
    tool_names = json.loads(json.dumps(result)).split("Its tools: ")[1].rstrip(".").split(", ")
    assert tool_names and all("__todo__" in name for name in tool_names)
    # Once open, the panel's tools come with their schemas in the same turn...
    schemas = {t["function"]["name"] for t in gateway.llm.requests[-1]["tools"]}
    assert set(tool_names) <= schemas
    # ...and on later turns they are named in load_tools (deferred) and callable.
    await gateway.chat("thanks")
    assert set(tool_names) <= callable_tools(gateway.llm.requests[-1])
