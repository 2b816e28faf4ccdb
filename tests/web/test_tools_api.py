"""``GET /api/v1/tools`` through the real gateway: the caller's registry (built-ins, their
panels' tools, the skills they may run, their MCP servers' tools) with usage, last use
and failure rate counted from the real tool calls of scripted turns; another user's calls
never count for a user, and only the owner may ask for everyone's."""

import sys
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from web_users import gateway_with_carol

from nexflow.testing.fake_llm import Reply
from nexflow.testing.harness import GatewayHarness
from tests.mcp_client.conftest import DEMO


@pytest.fixture
async def gw(tmp_path: Path) -> AsyncIterator[GatewayHarness]:
    notes = tmp_path / "notes"
    notes.mkdir()
    (notes / "plan.txt").write_text("Ship on Friday.")
    server = {"command": sys.executable, "args": [str(DEMO), str(notes)]}
    async with gateway_with_carol(tmp_path, {"mcp": {"servers": {"notes": server}}}) as harness:
        yield harness


async def registry(client: httpx.AsyncClient, query: str = "") -> dict[str, dict[str, Any]]:
    resp = await client.get(f"/api/v1/tools{query}")
    assert resp.status_code == 200, resp.text
    return {t["name"]: t for t in resp.json()["tools"]}


async def test_the_registry_lists_every_kind_of_tool_the_caller_can_use(
    gw: GatewayHarness,
) -> None:
    assert (await gw.http.post("/api/v1/panels", json={"template": "todo"})).status_code == 201
    tools = await registry(gw.http)

    get_time = tools["get_time"]
    assert get_time["source"] == "builtin" and get_time["category"] == "general"
    assert get_time["description"] == "Current date and time"  # the first sentence
    assert get_time["deferred"] is True and get_time["effects"] == []
    assert (get_time["usage"], get_time["last_used"], get_time["failure_rate"]) == (0, None, 0.0)
    assert tools["run_skill"]["effects"] == ["write", "egress", "untrusted"]  # worst case
    assert tools["reminder_add"]["category"] == "reminders"
    assert tools["memory_save"]["effects"] == ["write"]
    assert {"send_file", "patch_propose", "panel_open"} <= tools.keys()
    assert "load_tools" not in tools

    panel = {n: t for n, t in tools.items() if t["source"] == "panel"}
    assert panel and all(n.endswith(("add_item", "toggle_item", "clear_done")) for n in panel)
    skill = tools["file-read"]
    assert skill["source"] == "skill" and skill["category"] == "filesystem"  # from SKILL.md
    assert tools["shell-run"]["effects"] == ["write", "egress", "untrusted"]
    assert {n for n, t in tools.items() if t["source"] == "mcp"} == {"mcp_tools", "mcp_call"}


async def test_usage_and_failure_rate_move_after_real_tool_calls(gw: GatewayHarness) -> None:
    before = time.time()
    gw.llm.push(Reply(tool_calls=(("get_time", {}),)))
    assert (await gw.chat("what time is it?"))["tool_calls"][0]["ok"] is True
    assert (await registry(gw.http))["get_time"]["usage"] == 1

    gw.llm.push(Reply(tool_calls=(("get_time", {"timezone": "Mars/Olympus"}),)))
    assert (await gw.chat("and on Mars?"))["tool_calls"][0]["ok"] is False
    gw.llm.push(
        Reply(tool_calls=(("run_skill", {"name": "file-read", "input": {"path": "nope.txt"}}),))
    )
    await gw.chat("read nope.txt")
    tools = await registry(gw.http)

    get_time = tools["get_time"]
    assert (get_time["usage"], get_time["failures"], get_time["failure_rate"]) == (2, 1, 0.5)
    assert before <= get_time["last_used"] <= time.time()
    # A skill counts its own runs (skill_run); run_skill counts the tool calls.
    assert (tools["file-read"]["usage"], tools["file-read"]["failures"]) == (1, 1)
    assert (tools["run_skill"]["usage"], tools["run_skill"]["failure_rate"]) == (1, 1.0)
    assert tools["send_file"]["usage"] == 0


async def test_mcp_tools_are_listed_once_their_server_has_listed_them(gw: GatewayHarness) -> None:
    assert "notes__read_note" not in await registry(gw.http)  # the server has not started
    gw.llm.push(Reply(tool_calls=(("notes__read_note", {"name": "plan"}),)))
    await gw.chat("what is the plan?")
    tools = await registry(gw.http)
    read, delete = tools["notes__read_note"], tools["notes__delete_note"]
    assert read["source"] == delete["source"] == "mcp"
    assert read["deferred"] is True  # callable by name, never offered with a schema
    assert read["effects"] == [] and "write" in delete["effects"]  # from the annotations
    assert (read["usage"], read["failures"], delete["usage"]) == (1, 0, 0)


async def test_another_users_calls_do_not_count_and_all_is_the_owners(
    gw: GatewayHarness, carol: httpx.AsyncClient
) -> None:
    for _ in range(2):
        gw.llm.push(Reply(tool_calls=(("get_time", {}),)))
        resp = await carol.post("/api/v1/chat", json={"message": "time?"})
        assert resp.json()["tool_calls"][0]["ok"] is True
    gw.llm.push(Reply(tool_calls=(("get_time", {"timezone": "Nowhere/Bogus"}),)))
    await gw.chat("time nowhere?")

    mine = await registry(gw.http)
    assert (mine["get_time"]["usage"], mine["get_time"]["failures"]) == (1, 1)
    hers = await registry(carol)
    assert (hers["get_time"]["usage"], hers["get_time"]["failures"]) == (2, 0)
    everyone = await registry(gw.http, "?all=true")
    assert (everyone["get_time"]["usage"], everyone["get_time"]["failures"]) == (3, 1)
    assert everyone["get_time"]["failure_rate"] == round(1 / 3, 4)

    # Carol's registry is hers: no file-read (role user has no filesystem permission),
    # no MCP server (allowed to the owner only).
    assert "file-read" not in hers and not any(t["source"] == "mcp" for t in hers.values())
    refused = await carol.get("/api/v1/tools?all=true")
    assert refused.status_code == 403
    assert refused.json()["error"]["code"] == "forbidden"


async def test_a_bad_query_parameter_is_a_clear_422(gw: GatewayHarness) -> None:
    resp = await gw.http.get("/api/v1/tools?all=maybe")
    assert resp.status_code == 422
    error = resp.json()["error"]
    assert error["code"] == "invalid_request"
    assert error["message"].startswith("query.all: Input should be a valid boolean")
