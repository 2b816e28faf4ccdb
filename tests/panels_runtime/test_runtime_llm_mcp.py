"""Panel tools as the model sees them (fake LLM through the real gateway) and over MCP."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from mcp import Client

from nexflow.testing.fake_llm import Reply
from nexflow.testing.harness import GatewayHarness


async def _open_monitor(gw: GatewayHarness) -> str:
    """Open the server monitor through the API; the provider name of its filter_logs tool."""
    created = (await gw.http.post("/api/v1/panels", json={"template": "server-monitor"})).json()
    return next(t for t in created["tools"] if t.endswith("__filter_logs"))


def _filter(panel: dict[str, Any]) -> object:
    return next(iter(panel["view"].values()), {}).get("filter")


async def test_llm_calls_filter_logs_and_the_view_filter_changes(gw: GatewayHarness) -> None:
    FILTER_LOGS = await _open_monitor(gw)
    gw.llm.push(
        Reply(tool_calls=(("load_tools", {"names": [FILTER_LOGS]}),)),
        Reply(tool_calls=((FILTER_LOGS, {"level": "error"}),)),
        Reply(text="Only errors are shown now."),
    )
    reply = await gw.chat("show me only the errors on the monitor")
    assert reply["reply"] == "Only errors are shown now."
    assert reply["tool_calls"][0]["name"] == FILTER_LOGS
    assert reply["tool_calls"][0]["ok"] is True

    # Deferred: named in the first request, its schema sent once loaded.
    assert FILTER_LOGS in gw.llm.requests[0]["tools"][-1]["function"]["description"]
    offered = {t["function"]["name"]: t["function"] for t in gw.llm.requests[1]["tools"]}
    assert offered[FILTER_LOGS]["parameters"]["properties"] == {"level": {"type": "string"}}
    assert ":main:server-monitor:filter_logs" in offered[FILTER_LOGS]["description"]

    panel = (await gw.http.get("/api/v1/panels/server-monitor")).json()
    assert _filter(panel) == "error"
    stream = _find(panel["render"]["root"], "LogStream")
    assert stream["props"]["filter"] == "error"
    versions = (await gw.http.get("/api/v1/panels/server-monitor/versions")).json()
    assert (versions[0]["tool"], versions[0]["triggered_by"]) == ("filter_logs", "ai")


async def test_a_failing_panel_tool_is_reported_to_the_model(gw: GatewayHarness) -> None:
    FILTER_LOGS = await _open_monitor(gw)
    gw.llm.push(
        Reply(tool_calls=((FILTER_LOGS, {"keyword": "error"}),)),
        Reply(text="That did not work."),
    )
    reply = await gw.chat("filter")
    assert reply["tool_calls"][0]["ok"] is False
    tool_message = gw.llm.requests[1]["messages"][-1]
    assert "unknown argument 'keyword'" in tool_message["content"]


async def test_tools_are_registered_again_at_startup(tmp_path: Path, sandbox_cache: Path) -> None:
    env = {"NEXFLOW_PANELS__CACHE_DIR": str(sandbox_cache)}
    async with GatewayHarness(tmp_path / "home", env=env) as gw:
        created = (await gw.http.post("/api/v1/panels", json={"template": "todo"})).json()
        add_item = next(t for t in created["tools"] if t.endswith("__add_item"))
        await gw.http.post("/api/v1/panels/todo/tools/add_item", json={"text": "milk"})
    async with GatewayHarness(tmp_path / "home", env=env) as gw:
        assert gw.app is not None
        assert add_item in await gw.owner_tools()
        panel = (await gw.http.get("/api/v1/panels/todo")).json()
        assert panel["state"]["items"] == [{"text": "milk", "done": False}]


async def test_mcp_lists_and_calls_panel_tools(gw: GatewayHarness) -> None:
    FILTER_LOGS = await _open_monitor(gw)
    async with Client(f"{gw.url}/mcp") as client:
        listed = await client.list_tools()
        names = {t.name for t in listed.tools}
        assert FILTER_LOGS in names
        tool = next(t for t in listed.tools if t.name == FILTER_LOGS)
        assert tool.input_schema["properties"] == {"level": {"type": "string"}}

        result = await client.call_tool(FILTER_LOGS, {"level": "warn"})
        assert not result.is_error
        assert result.structured_content is not None
        assert result.structured_content["ok"] is True
        assert json.loads(result.content[0].text)["effects"][0]["method"] == "setFilter"  # type: ignore[union-attr]

        bad = await client.call_tool(FILTER_LOGS, {"level": 1})
        assert bad.is_error
        missing = await client.call_tool("no_such_tool", {})
        assert missing.is_error

    panel = (await gw.http.get("/api/v1/panels/server-monitor")).json()
    assert _filter(panel) == "warn"


def _find(node: dict[str, Any], node_type: str) -> dict[str, Any]:
    if node["type"] == node_type:
        return node
    for child in node["children"]:
        found = _find(child, node_type)
        if found:
            return found
    return {}


async def test_mcp_serves_skills_but_never_confirms(gw: GatewayHarness) -> None:
    (gw.home / "workspace").mkdir(parents=True, exist_ok=True)
    (gw.home / "workspace" / "hello.txt").write_text("hello over mcp\n")
    marker = gw.home / "workspace" / "ran.txt"
    async with Client(f"{gw.url}/mcp") as client:
        names = {t.name for t in (await client.list_tools()).tools}
        assert {"read_skill", "run_skill"} <= names
        read = await client.call_tool(
            "run_skill", {"name": "file-read", "input": {"path": "hello.txt"}}
        )
        assert not read.is_error and "hello over mcp" in read.content[0].text  # type: ignore[union-attr]
        shell = await client.call_tool(
            "run_skill", {"name": "shell-run", "input": {"command": f"touch {marker}"}}
        )
        assert shell.is_error and "confirmation" in shell.content[0].text  # type: ignore[union-attr]
    assert not marker.exists()
