"""``POST /api/v1/chat`` on replica X for a turn that replica Y runs, when the turn does
not simply end with a reply: X answers what one gateway answers. A dead letter: 200,
``error: dead_letter`` and the notice its sender gets (before: a 202 after the whole
``web.reply_timeout_s``, the notice not being the turn's reply row). A parked turn: 202
while it waits for the approval (as on one gateway), and its reply once the approval is
answered in time. Two whole gateways on one Postgres."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path
from typing import Any

import pytest

from nexflow.testing.fake_llm import Reply
from nexflow.testing.harness import GatewayHarness
from nexflow.testing.waiting import wait_until


async def busy_on_y(y: GatewayHarness, session: str) -> asyncio.Task[dict[str, Any]]:
    """Y runs a slow turn of ``session`` (so Y holds its lease); the task of its reply."""
    assert y.app is not None
    y.llm.push(Reply(text="first", delay_s=1.0))
    before = len(y.llm.requests)
    first = asyncio.create_task(y.chat("the first question", session))
    await wait_until(lambda: len(y.llm.requests) == before + 1)
    assert y.app.gateway.replicas.holds(session)
    return first


async def test_a_dead_letter_on_y_answers_the_caller_waiting_on_x(
    tmp_path: Path, pg_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    env = {"NEXFLOW_BUS__MAX_ATTEMPTS": "1", "NEXFLOW_WEB__REPLY_TIMEOUT_S": "20"}
    async with (
        GatewayHarness(tmp_path / "x", storage_url=pg_url, env=env) as x,
        GatewayHarness(tmp_path / "y", storage_url=pg_url, env=env) as y,
    ):
        assert x.app is not None and y.app is not None
        orchestrator = y.app.gateway.runner._orchestrator
        real = orchestrator.run_turn
        runs: list[str] = []

        async def broken(event: Any, *args: Any, **kwargs: Any) -> Any:
            runs.append(event.message)
            if event.message == "boom":
                raise RuntimeError("a bug in the turn")
            return await real(event, *args, **kwargs)

        monkeypatch.setattr(orchestrator, "run_turn", broken)
        session = (await y.chat("hello"))["session"]
        first = await busy_on_y(y, session)
        started = time.monotonic()
        resp = await x.http.post("/api/v1/chat", json={"message": "boom", "session": session})
        took = time.monotonic() - started
        assert (await first)["reply"] == "first"
        assert runs.count("boom") == 1  # buried on Y
        assert resp.status_code == 200, resp.text
        body = resp.json()
        assert body["status"] == "done" and body["error"] == "dead_letter"
        item = await x.app.storage.get_inbox(body["message_id"])
        assert item is not None and item.status == "dead"
        # The very notice Y queued for its sender, as one gateway answers its caller.
        assert body["reply"] == y.app.gateway.runner.dead_letter_text(item)
        assert str(body["message_id"]) in body["reply"]
        assert took < 10, f"answered after {took:.1f} s"


async def test_a_turn_parked_on_y_answers_the_caller_on_x_as_one_gateway(
    tmp_path: Path, pg_url: str
) -> None:
    env = {"NEXFLOW_WEB__REPLY_TIMEOUT_S": "6"}
    async with (
        GatewayHarness(tmp_path / "x", storage_url=pg_url, env=env) as x,
        GatewayHarness(tmp_path / "y", storage_url=pg_url, env=env) as y,
    ):
        assert x.app is not None and y.app is not None
        call = ("run_skill", {"name": "shell-run", "input": {"command": "true"}})
        session = (await y.chat("hello"))["session"]

        # Parked and nobody answers: 202 once web.reply_timeout_s is over, as on one box.
        first = await busy_on_y(y, session)
        y.llm.push(Reply(tool_calls=(call,)))
        late = await x.http.post("/api/v1/chat", json={"message": "make it", "session": session})
        assert (await first)["reply"] == "first"
        assert late.status_code == 202 and late.json()["status"] == "pending"
        (card,) = (await x.http.get("/api/v1/confirmations")).json()
        answered = await x.http.post(f"/api/v1/confirmations/{card['id']}", json={"approve": True})
        assert answered.status_code == 200
        async with asyncio.timeout(10):
            while (item := await x.app.storage.get_inbox(late.json()["message_id"])) is not None:
                if item.status == "done":
                    break
                await asyncio.sleep(0.05)

        # Parked on Y and answered while the caller on X still waits: the reply.
        first = await busy_on_y(y, session)
        y.llm.push(Reply(tool_calls=(call,)))
        y.llm.push(Reply(text="Made it again."))
        x.llm.push(Reply(text="Made it again."))  # whichever replica resumes it
        waiting = asyncio.create_task(
            x.http.post("/api/v1/chat", json={"message": "again", "session": session})
        )
        assert (await first)["reply"] == "first"
        async with asyncio.timeout(10):
            while True:
                if cards := (await x.http.get("/api/v1/confirmations")).json():
                    break
                await asyncio.sleep(0.05)
        await x.http.post(f"/api/v1/confirmations/{cards[0]['id']}", json={"approve": True})
        resp = await waiting
        assert resp.status_code == 200, resp.text
        assert resp.json()["reply"] == "Made it again."
