"""Skills through the real gateway: confirmation in chat, the HTTP API, slash commands."""

import asyncio
import json
from pathlib import Path
from typing import Any

import websockets

from nexflow.testing.fake_llm import Reply, callable_tools
from nexflow.testing.harness import GatewayHarness


async def collect_until(ws: Any, kind: str, predicate: Any = None) -> dict[str, Any]:
    async with asyncio.timeout(30):
        while True:
            event = json.loads(await ws.recv())
            if event.get("type") == "reply" and "outbox_id" in event:  # as the page does
                await ws.send(json.dumps({"type": "ack", "outbox_id": event["outbox_id"]}))
            is_kind = event.get("type") == "reply" and event.get("kind") == kind
            if is_kind and (predicate is None or predicate(event)):
                return event


async def run_shell_via_chat(gw: GatewayHarness, approve: bool, marker: Path) -> dict[str, Any]:
    command = f"echo ran > {marker} && echo done-it"
    call = ("run_skill", {"name": "shell-run", "input": {"command": command}})
    gw.llm.push(Reply(tool_calls=(call,)))
    async with websockets.connect(gw.url.replace("http", "ws") + "/ws/chat/new") as ws:
        await ws.send(json.dumps({"type": "message", "message": "please run my command"}))
        ask = await collect_until(ws, "confirmation")
        assert ask["title"] == "Run skill shell-run?"
        assert f"$ {command}" in ask["detail"]  # the exact command is shown
        # The model cannot answer: only the user's own channel can.
        resp = await gw.http.post(
            f"/api/v1/confirmations/{ask['confirmation_id']}", json={"approve": approve}
        )
        assert resp.json()["outcome"] == ("approved" if approve else "declined")
        return await collect_until(ws, "text", lambda e: e.get("reply_to") is not None)


async def test_shell_command_runs_only_after_confirmation(gateway: GatewayHarness) -> None:
    marker = gateway.home / "workspace" / "marker.txt"
    reply = await run_shell_via_chat(gateway, True, marker)
    assert "done-it" in reply["text"]
    assert marker.read_text() == "ran\n"
    tool_result = gateway.llm.requests[-1]["messages"][-1]
    assert tool_result["role"] == "tool" and "done-it" in tool_result["content"]
    assert gateway.app is not None
    audit = await gateway.app.storage.audit_tail(50)
    runs = [a for a in audit if a["kind"] == "skill_run"]
    assert runs[0]["name"] == "shell-run" and runs[0]["data"]["confirmed"] is True
    assert {a["outcome"] for a in audit if a["kind"] == "confirmation"} == {"requested", "approved"}


async def test_cancel_means_nothing_ran(gateway: GatewayHarness) -> None:
    marker = gateway.home / "workspace" / "marker.txt"
    await run_shell_via_chat(gateway, False, marker)
    assert not marker.exists()
    tool_result = gateway.llm.requests[-1]["messages"][-1]
    assert "declined" in tool_result["content"]
    assert gateway.app is not None
    runs = [a for a in await gateway.app.storage.audit_tail(50) if a["kind"] == "skill_run"]
    assert runs[0]["outcome"] == "declined"


async def test_confirm_command_in_chat_text(gateway: GatewayHarness) -> None:
    gateway.llm.push(
        Reply(
            tool_calls=(("run_skill", {"name": "shell-run", "input": {"command": "echo typed"}}),)
        )
    )
    turn = asyncio.create_task(gateway.chat("run echo"))
    assert gateway.app is not None
    for _ in range(200):
        pending = (await gateway.http.get("/api/v1/confirmations")).json()
        if pending:
            break
        await asyncio.sleep(0.05)
    answer = await gateway.chat(f"/confirm {pending[0]['id']}")
    assert answer["reply"] == "Confirmed."
    assert "typed" in (await turn)["reply"]
    again = await gateway.chat(f"/confirm {pending[0]['id']}")
    assert "no pending confirmation" in again["reply"]


async def test_skills_http_api_with_confirmation(gateway: GatewayHarness) -> None:
    listed = (await gateway.http.get("/api/v1/skills")).json()
    by_name = {s["name"]: s for s in listed}
    assert {"shell-run", "file-read"} <= by_name.keys()
    assert all({"name", "description", "available", "reason"} <= s.keys() for s in listed)
    (gateway.home / "workspace" / "notes.txt").write_text("hello notes\n")
    read = await gateway.http.post("/api/v1/skills/file-read", json={"path": "notes.txt"})
    assert read.status_code == 200 and read.json()["ok"] is True
    assert "hello notes" in json.dumps(read.json())
    first = await gateway.http.post("/api/v1/skills/shell-run", json={"command": "echo api"})
    assert first.status_code == 409
    pending = first.json()["confirmation"]
    assert "$ echo api" in pending["detail"]
    # The id is bound to this exact input.
    other = await gateway.http.post(
        "/api/v1/skills/shell-run",
        json={"command": "echo other"},
        headers={"Nexflow-Confirmation": pending["id"]},
    )
    assert other.status_code == 409
    ok = await gateway.http.post(
        "/api/v1/skills/shell-run",
        json={"command": "echo api"},
        headers={"Nexflow-Confirmation": pending["id"]},
    )
    body = ok.json()
    assert ok.status_code == 200 and body["ok"] and body["exit_code"] == 0
    assert body["output"] == "api\n" and body["duration_ms"] > 0 and body["error"] is None
    missing = await gateway.http.post("/api/v1/skills/nope", json={})
    assert missing.status_code == 404


async def test_slash_commands(gateway: GatewayHarness) -> None:
    listing = await gateway.chat("/skills")
    assert "shell-run" in listing["reply"] and "file-read" in listing["reply"]
    (gateway.home / "workspace" / "a.txt").write_text("from slash run\n")
    ran = await gateway.chat("/run file-read a.txt")
    assert "from slash run" in ran["reply"]
    status = await gateway.chat("/status")
    assert "openai/fake-model" in status["reply"] and "isolation" in status["reply"]
    unknown = await gateway.chat("/frobnicate")
    assert "/help" in unknown["reply"]
    assert gateway.llm.requests == []  # commands never reach the model


async def test_prompt_lists_skills_briefly(gateway: GatewayHarness) -> None:
    await gateway.chat("hi")
    system = gateway.llm.requests[0]["messages"][0]["content"]
    assert "shell-run" in system and "read_skill" in system
    assert "## Purpose" not in system  # bodies are read on demand, not sent
    tools = {t["function"]["name"] for t in gateway.llm.requests[0]["tools"]}
    assert {"read_skill", "run_skill", "load_tools"} <= tools
    assert "get_time" in callable_tools(gateway.llm.requests[0])
