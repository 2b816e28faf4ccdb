"""SPEC §6, "One budget gate": a user at the hard daily stop gets a clear refusal and NO
model call on any path. The real gateway (uvicorn, git workspaces, the panel sandbox,
APScheduler, MCP) against the fake model, which counts every request that reaches it."""

from __future__ import annotations

import asyncio
import json
import sqlite3
from collections.abc import AsyncIterator
from contextlib import closing
from datetime import UTC, datetime
from pathlib import Path

import pytest
import websockets
from mcp import Client

from nexflow.storage.repo_usage import UsageRow
from nexflow.tasks import ReminderTarget
from nexflow.testing.fake_llm import Reply
from nexflow.testing.harness import GatewayHarness

LIMIT = 1_000
REFUSAL = f"You have used your daily budget of {LIMIT} tokens"


async def owner(gw: GatewayHarness) -> str:
    assert gw.app is not None
    found = await gw.app.storage.find_user("web", "owner")
    assert found is not None
    return found[0]


@pytest.fixture
async def at_stop(tmp_path: Path) -> AsyncIterator[GatewayHarness]:
    """A gateway whose web owner has the to-do and notes panels, an edit to sync, and has
    used exactly the daily limit; not one model request made so far."""
    env = {"NEXFLOW_BUDGETS__PER_USER_DAILY_TOKENS": str(LIMIT)}
    async with GatewayHarness(tmp_path / "home", env=env, client="openai") as gw:
        await gw.chat("/panel new todo")  # commands: no model call
        await gw.chat("/panel new notes")
        added = await gw.http.post("/api/v1/panels/todo/tools/add_item", json={"text": "milk"})
        assert added.json()["ok"] is True
        assert gw.app is not None
        today = datetime.now(UTC).strftime("%Y-%m-%d")
        await gw.app.storage.record_usage(
            await owner(gw), today, "user", [UsageRow("openai/fake-model", 1, LIMIT, 0)]
        )
        # Whatever a path would ask, the model has an answer ready: only the gate stops it.
        gw.llm.push(*[Reply(text=json.dumps({"changes": []}))] * 4)
        assert gw.llm.requests == []
        yield gw
        assert gw.llm.requests == []  # no path reached the model


async def test_chat_over_http_is_refused_without_a_model_call(at_stop: GatewayHarness) -> None:
    reply = await at_stop.chat("hello")
    assert reply["error"] == "budget_exhausted"
    assert reply["reply"].startswith(REFUSAL)


async def test_chat_over_websocket_is_refused_without_a_model_call(
    at_stop: GatewayHarness,
) -> None:
    async with websockets.connect(at_stop.url.replace("http", "ws") + "/ws/chat/new") as ws:
        await ws.send(json.dumps({"type": "message", "message": "stream this please"}))
        async with asyncio.timeout(20):
            while (event := json.loads(await ws.recv()))["type"] != "reply":
                assert event["type"] != "token"  # nothing streamed: no model was asked
    assert event["text"].startswith(REFUSAL)


async def test_sync_in_chat_is_refused_without_a_model_call(at_stop: GatewayHarness) -> None:
    reply = await at_stop.chat("/sync todo")
    assert f"your daily token budget of {LIMIT} tokens is used up" in reply["reply"]
    assert "no model was asked" in reply["reply"]


async def test_sync_over_http_is_429_without_a_model_call(at_stop: GatewayHarness) -> None:
    resp = await at_stop.http.post("/api/v1/panels/todo/sync")
    assert resp.status_code == 429
    error = resp.json()["error"]
    assert error["code"] == "budget_exhausted"
    assert f"daily token budget of {LIMIT} tokens" in error["message"]
    assert at_stop.app is not None
    [refusal] = await at_stop.app.storage.audit_tail(1, "budget")
    assert (refusal["name"], refusal["outcome"]) == ("daily", "refused")


async def test_a_firing_reminder_makes_no_model_call(at_stop: GatewayHarness) -> None:
    assert at_stop.app is not None
    target = ReminderTarget(await owner(at_stop), "web", "c1", "")
    await at_stop.app.reminders.add_cron(target, "stretch", "* * * * * *", allow_seconds=True)
    db = at_stop.home / "nexflow.db"
    for _ in range(200):
        if delivered(db, "stretch"):
            break
        await asyncio.sleep(0.05)
    assert delivered(db, "stretch")


async def test_an_mcp_panel_tool_call_makes_no_model_call(at_stop: GatewayHarness) -> None:
    async with Client(f"{at_stop.url}/mcp") as client:
        names = {t.name for t in (await client.list_tools()).tools}
        add_item = next(n for n in names if n.endswith("__add_item"))
        result = await client.call_tool(add_item, {"text": "bread"})
    assert not result.is_error


def delivered(db: Path, text: str) -> bool:
    with closing(sqlite3.connect(db)) as conn:
        rows = conn.execute("SELECT payload FROM outbox").fetchall()
    return any(text in payload and '"reply_to":null' in payload for (payload,) in rows)
