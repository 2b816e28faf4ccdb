"""MCP tools through the real gateway (scripted model, real stdio server): the model calls
a tool by its ``<server>__<tool>`` name and answers with its result; a destructive tool
waits for the user and a no runs nothing; a user the server does not allow neither sees
nor can call it."""

import asyncio
import json
import sys
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from nexflow.llm.policy import estimate_tokens
from nexflow.testing.fake_llm import Reply
from nexflow.testing.harness import GatewayHarness
from tests.mcp_client.conftest import DEMO

CAROL = "carol-web-token-0123456789abcdef"


@pytest.fixture
async def gw(tmp_path: Path, notes: Path) -> AsyncIterator[GatewayHarness]:
    config = {
        "web": {"users": {"carol": CAROL}},
        "memory": {"paging": False},
        "mcp": {
            "servers": {
                "notes": {
                    "command": sys.executable,
                    "args": [str(DEMO), str(notes)],
                    "description": "Team notes",
                }
            }
        },
    }
    path = tmp_path / "config.yml"
    path.write_text(yaml.safe_dump(config))
    async with GatewayHarness(tmp_path / "home", config_file=path) as harness:
        yield harness


def offered(request: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {t["function"]["name"]: t["function"] for t in request.get("tools") or []}


async def test_the_model_calls_an_mcp_tool_and_uses_its_result(gw: GatewayHarness) -> None:
    gw.llm.push(
        Reply(tool_calls=(("notes__read_note", {"name": "plan"}),)),
        Reply(text="The plan: ship on Friday."),
    )
    reply = await gw.chat("what is the plan?")
    assert reply["reply"] == "The plan: ship on Friday."
    first, second = gw.llm.requests[0], gw.llm.requests[1]
    tools = offered(first)
    assert "notes__read_note" not in tools  # schemas only on demand
    listing = tools["mcp_tools"]["description"]
    assert "notes (Team notes: tools listed on first use)" in listing
    mcp_part = [t for t in first["tools"] if t["function"]["name"].startswith("mcp_")]
    assert estimate_tokens([], mcp_part) <= 150  # the gateway's estimate: both tools, 1 server
    result = second["messages"][-1]
    assert result["role"] == "tool" and "Ship the MCP client on Friday." in result["content"]
    assert 'trust="trusted"' in result["content"]  # openWorldHint false: not untrusted
    # The next turn's listing names the server's tools (learned on its first start).
    gw.llm.push(Reply(text="ok"))
    await gw.chat("hi")
    assert "read_note, delete_note" in offered(gw.llm.requests[-1])["mcp_tools"]["description"]


async def answer_card(gw: GatewayHarness, turn: "asyncio.Task[Any]", approve: bool) -> Any:
    deadline = time.monotonic() + 30
    while not (pending := (await gw.http.get("/api/v1/confirmations")).json()):
        assert time.monotonic() < deadline, "no confirmation was asked"
        assert not turn.done(), turn
        await asyncio.sleep(0.05)
    (card,) = pending
    assert card["title"] == "Run notes__delete_note?"
    assert '"plan"' in card["detail"]
    answered = await gw.http.post(f"/api/v1/confirmations/{card['id']}", json={"approve": approve})
    assert answered.json() == {"outcome": "approved" if approve else "declined"}
    return await turn


async def test_a_destructive_tool_waits_and_a_no_runs_nothing(
    gw: GatewayHarness, notes: Path
) -> None:
    gw.llm.push(
        Reply(tool_calls=(("notes__delete_note", {"name": "plan"}),)),
        Reply(text="I kept it."),
    )
    turn = asyncio.create_task(gw.chat("delete the plan"))
    assert (await answer_card(gw, turn, approve=False))["reply"] == "I kept it."
    assert (notes / "plan.txt").exists() and not (notes / "deleted.log").exists()
    assert "declined" in gw.llm.requests[-1]["messages"][-1]["content"]


async def test_a_destructive_tool_runs_after_a_yes(gw: GatewayHarness, notes: Path) -> None:
    gw.llm.push(
        Reply(
            tool_calls=(
                (
                    "mcp_call",
                    {"server": "notes", "tool": "delete_note", "arguments": {"name": "plan"}},
                ),
            )
        ),
        Reply(text="Deleted."),
    )
    turn = asyncio.create_task(gw.chat("delete the plan"))
    assert (await answer_card(gw, turn, approve=True))["reply"] == "Deleted."
    assert not (notes / "plan.txt").exists()
    assert (notes / "deleted.log").read_text() == "plan\n"  # once, after the yes
    assert "deleted plan" in gw.llm.requests[-1]["messages"][-1]["content"]


async def test_a_user_not_allowed_neither_sees_nor_calls_the_server(
    gw: GatewayHarness, notes: Path
) -> None:
    gw.llm.push(
        Reply(tool_calls=(("notes__read_note", {"name": "plan"}),)),
        Reply(tool_calls=(("mcp_call", {"server": "notes", "tool": "read_note"}),)),
        Reply(text="I cannot."),
    )
    carol = httpx.AsyncClient(
        base_url=gw.url, headers={"Authorization": f"Bearer {CAROL}"}, timeout=30
    )
    async with carol:
        resp = await carol.post("/api/v1/chat", json={"message": "read the plan"})
    assert resp.json()["reply"] == "I cannot."
    first = gw.llm.requests[0]
    assert not {"mcp_tools", "mcp_call"} & set(offered(first))
    assert "notes" not in json.dumps(first["messages"][0])
    by_name = gw.llm.requests[1]["messages"][-1]["content"]
    assert "no tool named 'notes__read_note'" in by_name
    via_call = gw.llm.requests[2]["messages"][-1]["content"]
    assert "no tool named 'mcp_call'" in via_call
    assert not (notes / "starts.log").exists()  # the server never even started


async def test_a_server_that_cannot_start_is_told_plainly(tmp_path: Path) -> None:
    config = {"mcp": {"servers": {"ghost": {"command": str(tmp_path / "no-such-server")}}}}
    path = tmp_path / "config.yml"
    path.write_text(yaml.safe_dump(config))
    async with GatewayHarness(tmp_path / "home", config_file=path) as harness:
        harness.llm.push(
            Reply(tool_calls=(("ghost__anything", {}),)),
            Reply(text="The ghost server is down."),
        )
        assert (await harness.chat("use ghost"))["reply"] == "The ghost server is down."
        told = harness.llm.requests[1]["messages"][-1]["content"]
        assert "MCP server ghost could not start: the command" in told
        assert "was not found" in told and "Traceback" not in told
