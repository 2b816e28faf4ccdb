"""Durable turns across SIGKILL of a real `nexflow serve`: a parked approval survives and
resumes once without asking again; a turn that dies with the process every time becomes a
dead letter after `bus.max_attempts`, its sender is told, and nothing else stalls."""

import asyncio
import signal
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from nexflow.testing.fake_llm import FakeLLMServer, Reply
from nexflow.testing.harness import free_port
from nexflow.testing.process import db_rows, gateway_env, process, serve_command, wait_healthy

pytestmark = pytest.mark.slow


def brain(request: dict[str, Any]) -> Reply:
    last = request["messages"][-1]
    if last["role"] == "tool":
        return Reply(text=f"done: {last['content'][-200:]}")
    text = str(last.get("content") or "")
    if text.startswith("run: "):
        return Reply(
            tool_calls=(("run_skill", {"name": "shell-run", "input": {"command": text[5:]}}),)
        )
    if text == "poison":
        return Reply(text="too late", delay_s=8)  # the gateway is killed while it waits
    return Reply(text=f"Echo: {text}")


@pytest.fixture
async def llm() -> AsyncIterator[FakeLLMServer]:
    """The model, in the test's process: the gateway under test is the one that dies."""
    server = FakeLLMServer(brain=brain)
    await server.start()
    yield server
    await server.stop()


def where(tmp_path: Path) -> tuple[int, Path, Path, Path]:
    """A free port, the gateway's home, its database and its log."""
    home = tmp_path / "home"
    return free_port(), home, home / "nexflow.db", tmp_path / "gateway.log"


async def until(check: Any, within: float = 30, what: str = "") -> Any:
    deadline = time.monotonic() + within
    while True:
        value = check()
        if asyncio.iscoroutine(value):
            value = await value
        if value:
            return value
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        await asyncio.sleep(0.05)


async def test_parked_approvals_survive_sigkill_and_one_resumes_once(
    tmp_path: Path, llm: FakeLLMServer
) -> None:
    """100 turns parked in 100 sessions hold no worker (a new session is answered within a
    second), survive SIGKILL without being asked again, and the one answered resumes once."""
    port, home, db, log = where(tmp_path)
    url = f"http://127.0.0.1:{port}"
    env = gateway_env(
        home, llm.base_url, NEXFLOW_WEB__REPLY_TIMEOUT_S="1", NEXFLOW_BUS__CONCURRENCY="8"
    )
    marker = home / "workspace" / "resumed.txt"
    async with httpx.AsyncClient(base_url=url, timeout=30) as http:
        with process(serve_command(port), env, log) as gateway:
            await wait_healthy(url, gateway)
            sent = await asyncio.gather(
                *(
                    http.post("/api/v1/chat", json={"message": f"run: echo {i} >> {marker}"})
                    for i in range(100)
                )
            )
            assert {r.status_code for r in sent} == {202}
            asked = await until(
                lambda: _pending_count(http, 100), what="100 confirmations", within=60
            )
            started = time.perf_counter()
            hello = await http.post("/api/v1/chat", json={"message": "hello"})
            took = time.perf_counter() - started
            assert hello.json()["reply"] == "Echo: hello"
            assert took < 1.0, f"a new session waited {took:.2f} s behind 100 parked turns"
            gateway.send_signal(signal.SIGKILL)
            gateway.wait(10)
        requests_before = len(llm.requests)
        with process(serve_command(port), env, log) as gateway:
            await wait_healthy(url, gateway)
            await asyncio.sleep(0.5)  # a restart must not run or ask anything by itself
            assert {c["id"] for c in await _pending(http)} == {c["id"] for c in asked}
            assert len(llm.requests) == requests_before
            asks = db_rows(db, "SELECT COUNT(*) FROM outbox WHERE payload LIKE '%confirmation_id%'")
            assert asks == [(100,)]
            one = asked[0]
            answer = await http.post(f"/api/v1/confirmations/{one['id']}", json={"approve": True})
            assert answer.json() == {"outcome": "approved"}

            async def replied() -> bool:
                messages = (await http.get(f"/api/v1/sessions/{one['session']}")).json()
                roles = [m["role"] for m in messages["messages"]]
                return roles == ["user", "assistant", "tool", "assistant"]

            await until(replied, what="the resumed turn's reply")
            again = await http.post(f"/api/v1/confirmations/{one['id']}", json={"approve": True})
            assert again.status_code == 404
            assert len(await _pending(http)) == 99
    assert len(marker.read_text().splitlines()) == 1  # ran once, only the approved one
    statuses = db_rows(db, "SELECT status, COUNT(*) FROM inbox GROUP BY status ORDER BY 1")
    assert statuses == [("awaiting", 99), ("done", 2)]
    assert db_rows(db, "SELECT status, COUNT(*) FROM approvals GROUP BY 1 ORDER BY 1") == [
        ("pending", 99),
        ("used", 1),
    ]
    assert db_rows(db, "SELECT COUNT(*) FROM turns") == [(99,)]


async def _pending_count(http: httpx.AsyncClient, count: int) -> list[dict[str, Any]]:
    listed = await _pending(http)
    return listed if len(listed) >= count else []


async def _pending(http: httpx.AsyncClient) -> list[dict[str, Any]]:
    listed: list[dict[str, Any]] = (await http.get("/api/v1/confirmations")).json()
    return listed


async def test_a_turn_that_dies_every_time_becomes_a_dead_letter(
    tmp_path: Path, llm: FakeLLMServer
) -> None:
    port, home, db, log = where(tmp_path)
    url = f"http://127.0.0.1:{port}"
    env = gateway_env(
        home, llm.base_url, NEXFLOW_WEB__REPLY_TIMEOUT_S="5", NEXFLOW_BUS__MAX_ATTEMPTS="2"
    )
    async with httpx.AsyncClient(base_url=url, timeout=30) as http:
        for attempt in (1, 2):
            with process(serve_command(port), env, log) as gateway:
                await wait_healthy(url, gateway)
                if attempt == 1:
                    sent = await http.post("/api/v1/chat", json={"message": "poison"})
                    session = sent.json()["session"]
                await until(lambda n=attempt: len(llm.requests) >= n, what="the model call")
                gateway.send_signal(signal.SIGKILL)  # the turn dies with the process
                gateway.wait(10)
        assert db_rows(db, "SELECT status, attempts FROM inbox") == [("running", 2)]
        with process(serve_command(port), env, log) as gateway:
            await wait_healthy(url, gateway)
            dead = await until(lambda: _get(http, "/api/v1/dead-letters"), what="the dead letter")
            assert [d["message"] for d in dead] == ["poison"]
            assert len(llm.requests) == 2  # not run a third time
            reply_ids = db_rows(db, "SELECT id FROM inbox WHERE status='dead'")
            assert len(reply_ids) == 1

            notices = db_rows(db, "SELECT payload FROM outbox WHERE inbox_id IS NULL")
            told = [str(row[0]) for row in notices if "dead letter" in str(row[0])]
            assert len(told) == 1 and session in told[0]  # the sender, once
            other = await http.post("/api/v1/chat", json={"message": "still there?"})
            assert other.json()["reply"] == "Echo: still there?"
            # Retried on purpose, it runs again (the model answers quickly this time).
            llm.brain = lambda request: Reply(text="answered at last")
            retried = await http.post(f"/api/v1/dead-letters/{dead[0]['id']}/retry", json={})
            assert retried.json() == {"id": dead[0]["id"], "status": "pending"}
            await until(
                lambda: (
                    db_rows(db, "SELECT status FROM inbox WHERE id=?", (dead[0]["id"],))
                    == [("done",)]
                ),
                what="the retried turn",
            )
            assert await _get(http, "/api/v1/dead-letters") == []


async def _get(http: httpx.AsyncClient, path: str) -> Any:
    return (await http.get(path)).json()
