"""Turns that wait for a person are stored, not held: parked approvals free their worker,
survive a restart without being asked again, work once and expire with a clear message."""

import asyncio
import time
from pathlib import Path
from typing import Any

import httpx

from nexflow.testing.fake_llm import Reply
from nexflow.testing.harness import GatewayHarness


def shell_brain(request: dict[str, Any]) -> Reply:
    """'run: <command>' asks for shell-run; a tool result is reported; anything else echoes."""
    messages = request["messages"]
    last = messages[-1]
    if last["role"] == "tool":
        return Reply(text=f"done: {last['content'][-300:]}")
    text = str(last.get("content") or "")
    if text.startswith("run: "):
        call = ("run_skill", {"name": "shell-run", "input": {"command": text[5:]}})
        return Reply(tool_calls=(call,))
    return Reply(text=f"Echo: {text}")


async def pending(http: httpx.AsyncClient, count: int, within: float = 60) -> list[dict[str, Any]]:
    deadline = time.monotonic() + within
    while True:
        listed: list[dict[str, Any]] = (await http.get("/api/v1/confirmations")).json()
        if len(listed) >= count:
            return listed
        assert time.monotonic() < deadline, f"{len(listed)} of {count} confirmations asked"
        await asyncio.sleep(0.05)


async def history(http: httpx.AsyncClient, session: str) -> list[dict[str, Any]]:
    messages: list[dict[str, Any]] = (await http.get(f"/api/v1/sessions/{session}")).json()[
        "messages"
    ]
    return messages


async def test_a_hundred_parked_turns_hold_no_worker(tmp_path: Path) -> None:
    env = {
        "NEXFLOW_BUS__CONCURRENCY": "4",
        "NEXFLOW_WEB__REPLY_TIMEOUT_S": "1.0",
        "NEXFLOW_MEMORY__PAGING": "false",
    }
    async with GatewayHarness(tmp_path / "home", env=env) as gw:
        gw.llm.brain = shell_brain
        marker = gw.home / "workspace" / "ran.txt"
        sessions: dict[int, str] = {}

        async def ask(i: int) -> None:
            reply = await gw.chat(f"run: echo {i} >> {marker}")
            assert reply["status"] == "pending"
            sessions[i] = reply["session"]

        await asyncio.gather(*(ask(i) for i in range(100)))
        asked = await pending(gw.http, 100)
        assert gw.app is not None and gw.app.gateway.queue_depth == 0

        started = time.perf_counter()
        resp = await gw.http.post(
            "/api/v1/chat", json={"message": "hello"}, timeout=5
        )  # a new session, while 100 turns wait for their users
        took = time.perf_counter() - started
        assert resp.status_code == 200, resp.text
        assert resp.json()["reply"] == "Echo: hello"
        assert took < 1.0, f"a fresh session waited {took:.2f} s behind parked turns"

        one = asked[0]
        answered = await gw.http.post(f"/api/v1/confirmations/{one['id']}", json={"approve": True})
        assert answered.json() == {"outcome": "approved"}
        again = await gw.http.post(f"/api/v1/confirmations/{one['id']}", json={"approve": True})
        assert again.status_code == 404  # an answer works once
        for _ in range(400):
            if marker.exists():
                break
            await asyncio.sleep(0.05)
        assert len(marker.read_text().splitlines()) == 1  # only the approved call ran
        assert len(await pending(gw.http, 99)) == 99


async def test_expired_approval_closes_the_turn_without_running(tmp_path: Path) -> None:
    env = {"NEXFLOW_SKILLS__CONFIRM_TIMEOUT_S": "0.5", "NEXFLOW_MEMORY__PAGING": "false"}
    async with GatewayHarness(tmp_path / "home", env=env) as gw:
        gw.llm.brain = shell_brain
        marker = gw.home / "workspace" / "never.txt"
        reply = await gw.chat(f"run: touch {marker}")
        assert reply["status"] == "done"  # the synchronous caller gets the turn's end
        assert "expired; nothing was run" in reply["reply"]
        assert not marker.exists()
        assert len(gw.llm.requests) == 1  # closing an expired turn asks no model
        messages = await history(gw.http, reply["session"])
        assert [m["role"] for m in messages] == ["user", "assistant", "tool", "assistant"]
        assert "not run: the confirmation expired" in messages[2]["content"]
        assert (await gw.http.get("/api/v1/confirmations")).json() == []


async def test_declined_call_is_not_run_and_the_model_hears_it(gateway: GatewayHarness) -> None:
    gateway.llm.brain = shell_brain
    marker = gateway.home / "workspace" / "declined.txt"
    turn = asyncio.create_task(gateway.chat(f"run: touch {marker}"))
    (ask,) = await pending(gateway.http, 1)
    answer = await gateway.chat(f"/cancel {ask['id']}")
    assert answer["reply"] == "Cancelled; nothing was run."
    reply = await turn
    assert "declined" in reply["reply"]
    assert not marker.exists()
