"""``/api/v1/agents`` through the real gateway with the scripted model: an agent defined
in the caller's workspace (``agents/<name>.yaml``) is listed, invoked over HTTP with its
persona in the system prompt and only its allowlisted tools offered, and each invocation
is recorded with the scripted usage; a flow's agent node uses the same definition (and is
recorded too); an invalid file is a 422 with line:column; another web user gets 404."""

from __future__ import annotations

import asyncio
import json
import time
from typing import Any

import httpx

from nexflow.testing.fake_llm import Reply, callable_tools
from nexflow.testing.harness import GatewayHarness
from nexflow.web.identity import USER_PREFIX

TRIAGE = """\
name: triage
description: Sorts incoming requests
persona: You are Triage-Bot. Answer with one word, the request's category.
tools: [get_time]
budget_tokens: 5000
"""
BAD = """\
name: bad
persona: "unterminated
"""
WRONG_FIELD = """\
name: wrong
description: has a bad budget
budget_tokens: -3
"""
FLOW = """\
name: sort
nodes:
  pick: {type: agent, agent: triage, prompt: "Sort this: printer on fire"}
"""


async def define(gw: GatewayHarness, sender: str, name: str, text: str) -> None:
    """Commit ``agents/<name>.yaml`` into the web user's default workspace."""
    assert gw.app is not None and gw.app.workspaces is not None
    found = await gw.app.storage.find_user("web", sender)
    assert found is not None
    service = await gw.app.workspaces.service()
    await service.write_file(found[0], f"agents/{name}.yaml", text)


def prompt_tokens(request: dict[str, Any]) -> int:
    """What the scripted server reports as the request's prompt tokens."""
    chars = len(json.dumps(request.get("messages", []))) + len(
        json.dumps(request.get("tools") or [])
    )
    return max(1, chars // 4)


async def test_invoke_an_agent_with_its_persona_tools_and_record(gw: GatewayHarness) -> None:
    assert (await gw.http.get("/api/v1/agents")).json() == []  # creates the web owner
    await define(gw, "owner", "triage", TRIAGE)
    listed = (await gw.http.get("/api/v1/agents")).json()
    assert listed == [
        {
            "name": "triage",
            "description": "Sorts incoming requests",
            "path": "agents/triage.yaml",
            "valid": True,
            "errors": [],
            "route": None,
            "tools": ["get_time"],
            "budget_tokens": 5000,
        }
    ]

    gw.llm.push(Reply(text="hardware"))
    resp = await gw.http.post("/api/v1/agents/triage/invoke", json={"input": "printer on fire"})
    assert resp.status_code == 200, resp.text
    result = resp.json()
    assert (result["status"], result["output"], result["error"]) == ("ok", "hardware", None)
    assert (result["agent"], result["source"], result["input"]) == (
        "triage",
        "api",
        "printer on fire",
    )

    request = gw.llm.requests[-1]
    system = request["messages"][0]
    assert system["role"] == "system"
    assert "You are Triage-Bot." in system["content"]
    # only the allowlist (and the orchestrator's own load_tools) out of the default toolset
    assert callable_tools(request) - {"load_tools"} == {"get_time"}
    assert len(await gw.owner_tools() - {"get_time"}) > 3
    assert result["tokens_in"] == prompt_tokens(request)
    assert result["tokens_out"] == max(1, len("hardware") // 4)

    recorded = (await gw.http.get("/api/v1/agents/triage/invocations")).json()
    assert [r["id"] for r in recorded] == [result["id"]]
    assert recorded[0] == result


async def test_a_flow_agent_node_uses_the_definition(gw: GatewayHarness) -> None:
    assert (await gw.http.get("/api/v1/agents")).status_code == 200
    await define(gw, "owner", "triage", TRIAGE)
    saved = await gw.http.post("/api/v1/flows", json={"name": "sort", "yaml": FLOW})
    assert saved.status_code == 200, saved.text
    gw.llm.push(Reply(text="facilities"))
    started = await gw.http.post("/api/v1/flows/sort/runs", json={})
    assert started.status_code == 201, started.text
    run_id = started.json()["id"]
    deadline = time.monotonic() + 20
    while True:
        data = (await gw.http.get(f"/api/v1/tasks/{run_id}")).json()
        if data["status"] in ("completed", "failed", "cancelled") or time.monotonic() > deadline:
            break
        await asyncio.sleep(0.1)
    assert data["status"] == "completed", data

    request = gw.llm.requests[-1]
    assert "You are Triage-Bot." in request["messages"][0]["content"]
    assert callable_tools(request) - {"load_tools"} == {"get_time"}
    (record,) = (await gw.http.get("/api/v1/agents/triage/invocations")).json()
    assert record["source"] == f"flow:{run_id}:pick"
    assert (record["status"], record["output"]) == ("ok", "facilities")
    assert record["input"] == "Sort this: printer on fire"
    assert record["tokens_in"] == prompt_tokens(request)


async def test_invalid_agent_files_are_422_with_line_and_column(gw: GatewayHarness) -> None:
    assert (await gw.http.get("/api/v1/agents")).status_code == 200
    await define(gw, "owner", "bad", BAD)
    await define(gw, "owner", "wrong", WRONG_FIELD)
    listed = {a["name"]: a for a in (await gw.http.get("/api/v1/agents")).json()}
    assert not listed["bad"]["valid"] and not listed["wrong"]["valid"]
    assert listed["wrong"]["errors"] == [
        "agents/wrong.yaml:3:1: budget_tokens: Input should be greater than 0"
    ]

    resp = await gw.http.post("/api/v1/agents/bad/invoke", json={"input": "hi"})
    assert resp.status_code == 422, resp.text
    body = resp.json()
    assert body["error"]["code"] == "invalid_agent"
    (error,) = body["errors"]
    assert error.startswith("agents/bad.yaml:3:1: YAML:"), error
    assert gw.llm.requests == []  # nothing reached the model


async def test_another_users_agent_is_404(gw: GatewayHarness, carol: httpx.AsyncClient) -> None:
    assert (await gw.http.get("/api/v1/agents")).status_code == 200
    await define(gw, "owner", "triage", TRIAGE)
    assert (await carol.get("/api/v1/agents")).json() == []
    resp = await carol.post("/api/v1/agents/triage/invoke", json={"input": "hi"})
    assert resp.status_code == 404, resp.text
    assert resp.json()["error"]["code"] == "unknown_agent"
    resp = await carol.get("/api/v1/agents/triage/invocations")
    assert resp.status_code == 404
    assert (await carol.post("/api/v1/agents/NO/invoke", json={"input": "x"})).status_code == 404

    # and carol's own agent of the same name is hers alone
    await define(gw, f"{USER_PREFIX}carol", "triage", TRIAGE.replace("Triage-Bot", "Carol-Bot"))
    gw.llm.push(Reply(text="ok"))
    resp = await carol.post("/api/v1/agents/triage/invoke", json={"input": "hi"})
    assert resp.status_code == 200, resp.text
    assert "Carol-Bot" in gw.llm.requests[-1]["messages"][0]["content"]
    assert (await gw.http.get("/api/v1/agents/triage/invocations")).json() == []


async def test_an_agent_stops_at_its_token_cap(gw: GatewayHarness) -> None:
    assert (await gw.http.get("/api/v1/agents")).status_code == 200
    capped = TRIAGE.replace("name: triage", "name: capped").replace("5000", "10")
    await define(gw, "owner", "capped", capped)
    gw.llm.push(Reply(tool_calls=(("get_time", {}),)))
    gw.llm.push(Reply(text="never sent"))
    resp = await gw.http.post("/api/v1/agents/capped/invoke", json={"input": "what time?"})
    assert resp.status_code == 200, resp.text
    result = resp.json()
    assert result["status"] == "error", result
    assert result["error"] == "budget_exhausted"
    assert len(gw.llm.requests) == 1  # the second model call was refused before sending
    (record,) = (await gw.http.get("/api/v1/agents/capped/invocations")).json()
    assert record["status"] == "error"
