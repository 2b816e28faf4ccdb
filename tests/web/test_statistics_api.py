"""``GET /api/v1/statistics/{overview,invocations,flows}`` through the real gateway: the
caller's messages, turns, tool calls, model use and queues from scripted turns; per-day
and per-tool invocations with mean and p95 durations; another user's activity counts
only in the owner's ``?all=true``; bad query parameters are a clear 422."""

import asyncio
import sqlite3
import time
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest

from nexflow.storage import AuditRecord
from nexflow.testing.fake_llm import Reply
from nexflow.testing.harness import GatewayHarness

DAY = 86_400


async def get(gw: GatewayHarness, path: str) -> dict[str, Any]:
    resp = await gw.http.get(path)
    assert resp.status_code == 200, resp.text
    data: dict[str, Any] = resp.json()
    return data


async def owner_id(gw: GatewayHarness) -> str:
    assert gw.app is not None
    found = await gw.app.storage.find_user("web", "owner")
    return found[0] if found else await gw.app.storage.create_user("owner", "owner", "web", "owner")


async def test_the_overview_counts_the_callers_turns_calls_and_tokens(gw: GatewayHarness) -> None:
    gw.llm.push(Reply(tool_calls=(("get_time", {}),)))
    await gw.chat("what time is it?")
    gw.llm.push(Reply(tool_calls=(("get_time", {"timezone": "Mars/Olympus"}),)))
    await gw.chat("and on Mars?")
    await gw.chat("thanks")

    stats = await get(gw, "/api/v1/statistics/overview")
    assert stats["scope"] == "mine"
    assert stats["day"] == datetime.now(UTC).strftime("%Y-%m-%d")
    today = stats["today"]
    assert (today["messages_in"], today["messages_out"], today["turns"]) == (3, 3, 3)
    assert (today["tool_calls"], today["tool_failures"], today["skill_runs"]) == (2, 1, 0)
    assert today["llm_calls"] == 5  # two per tool turn, one for the thanks
    assert today["tokens_in"] > 0 and today["tokens_out"] > 0
    assert today["per_model"]["openai/fake-model"]["llm_calls"] == 5
    for window in ("week", "total"):
        assert {k: v for k, v in stats[window].items() if k != "since"} == {
            k: v for k, v in today.items() if k != "since"
        }
    assert stats["total"]["since"] == 0 < stats["week"]["since"] < today["since"] <= time.time()
    assert today["since"] - stats["week"]["since"] == 6 * DAY
    assert stats["top_tools"] == [
        {"name": "get_time", "source": "tool", "calls": 2, "failures": 1, "failure_rate": 0.5}
    ]
    assert (stats["dead_letters"], stats["pending_approvals"]) == (0, 0)


async def test_a_pending_approval_is_counted_until_it_is_answered(gw: GatewayHarness) -> None:
    command = {"name": "shell-run", "input": {"command": "echo hi"}}
    gw.llm.push(Reply(tool_calls=(("run_skill", command),)), Reply(text="not run"))
    turn = asyncio.create_task(gw.chat("run echo hi"))
    deadline = time.monotonic() + 30
    while not (pending := (await gw.http.get("/api/v1/confirmations")).json()):
        assert time.monotonic() < deadline and not turn.done(), "no confirmation was asked"
        await asyncio.sleep(0.05)
    assert (await get(gw, "/api/v1/statistics/overview"))["pending_approvals"] == 1

    answer = {"approve": False}
    resp = await gw.http.post(f"/api/v1/confirmations/{pending[0]['id']}", json=answer)
    assert resp.status_code == 200
    await asyncio.wait_for(turn, 30)
    stats = await get(gw, "/api/v1/statistics/overview")
    assert stats["pending_approvals"] == 0
    assert stats["today"]["skill_failures"] == 1  # declined: the skill did not run


async def test_another_users_activity_counts_only_in_all(
    gw: GatewayHarness, carol: httpx.AsyncClient
) -> None:
    gw.llm.push(Reply(tool_calls=(("get_time", {}),)))
    resp = await carol.post("/api/v1/chat", json={"message": "time?"})
    assert resp.status_code == 200, resp.text

    mine = await get(gw, "/api/v1/statistics/overview")
    assert mine["today"]["messages_in"] == mine["today"]["tool_calls"] == 0
    assert mine["today"]["llm_calls"] == mine["today"]["tokens_in"] == 0
    assert mine["top_tools"] == []
    everyone = await get(gw, "/api/v1/statistics/overview?all=true")
    assert everyone["scope"] == "all"
    assert (everyone["today"]["messages_in"], everyone["today"]["tool_calls"]) == (1, 1)
    assert everyone["today"]["llm_calls"] == 2
    assert (await get(gw, "/api/v1/statistics/invocations"))["rows"] == []
    rows = (await get(gw, "/api/v1/statistics/invocations?all=true"))["rows"]
    assert [(r["name"], r["calls"]) for r in rows] == [("get_time", 1)]

    for path in ("overview", "invocations", "flows"):
        refused = await carol.get(f"/api/v1/statistics/{path}?all=true")
        assert refused.status_code == 403


async def test_invocations_per_day_and_tool_with_mean_and_p95(gw: GatewayHarness) -> None:
    assert gw.app is not None
    me = await owner_id(gw)

    def call(name: str, seconds: float, outcome: str = "ok", user: str = me) -> AuditRecord:
        return AuditRecord("tool_call", name, outcome, user, "s", {"duration_s": seconds})

    today = [call("get_time", i / 100) for i in range(1, 20)] + [call("get_time", 0.2, "error")]
    yesterday = [call("get_time", 1.0), call("memory_search", 0.5, "timeout")]
    skill = [AuditRecord("skill_run", "file-read", "ran", me, "s", {"duration_ms": 250.0})]
    await gw.app.storage.audit([call("get_time", 9.0), *yesterday])  # (the oldest first)
    await gw.app.storage.audit([*today, *skill, call("get_time", 5.0, user="someone-else")])
    with sqlite3.connect(gw.home / "nexflow.db") as db:  # move the first rows into the past
        db.execute("UPDATE audit SET ts = ts - ? WHERE id = 1", (10 * DAY,))
        db.execute("UPDATE audit SET ts = ts - ? WHERE id IN (2, 3)", (DAY,))
    now = datetime.now(UTC)
    day0, day1 = f"{now:%Y-%m-%d}", f"{now - timedelta(days=1):%Y-%m-%d}"

    week = await get(gw, "/api/v1/statistics/invocations")
    assert (week["scope"], week["days"], week["tool"]) == ("mine", 7, None)
    got = {(r["day"], r["name"]): r for r in week["rows"]}
    assert list(got) == [
        (day1, "get_time"),
        (day1, "memory_search"),
        (day0, "file-read"),
        (day0, "get_time"),
    ]
    assert got[(day0, "get_time")] == {
        "day": day0,
        "name": "get_time",
        "source": "tool",
        "calls": 20,
        "failures": 1,
        "mean_s": 0.105,
        "p95_s": 0.19,  # nearest rank: the 19th of 20
    }
    assert got[(day0, "file-read")]["source"] == "skill"
    assert got[(day0, "file-read")]["mean_s"] == 0.25  # skill runs record milliseconds
    assert got[(day1, "memory_search")]["failures"] == 1

    one = await get(gw, "/api/v1/statistics/invocations?days=2&tool=get_time")
    assert [(r["day"], r["calls"]) for r in one["rows"]] == [(day1, 1), (day0, 20)]
    month = await get(gw, "/api/v1/statistics/invocations?days=30&tool=get_time")
    assert [r["calls"] for r in month["rows"]] == [1, 1, 20]  # ten days ago too
    today_only = await get(gw, "/api/v1/statistics/invocations?days=1")
    assert {r["day"] for r in today_only["rows"]} == {day0}
    everyone = await get(gw, "/api/v1/statistics/invocations?days=1&tool=get_time&all=true")
    assert everyone["rows"][0]["calls"] == 21


async def test_flows_start_at_zero(gw: GatewayHarness) -> None:
    # Real numbers: tests/web/test_flows_api.py; flows turned off: zeros and a note, there.
    flows = await get(gw, "/api/v1/statistics/flows")
    assert flows == {
        "scope": "mine",
        "runs": 0,
        "by_status": dict.fromkeys(
            ("pending", "queued", "running", "completed", "failed", "paused", "cancelled"), 0
        ),
        "by_flow": {},
        "mean_duration_s": None,
        "tokens_in": 0,
        "tokens_out": 0,
        "note": None,
    }


@pytest.mark.parametrize(
    ("query", "message"),
    [
        ("invocations?days=0", "query.days: Input should be greater than or equal to 1"),
        ("invocations?days=91", "query.days: Input should be less than or equal to 90"),
        ("invocations?days=week", "query.days: Input should be a valid integer"),
        ("invocations?tool=", "query.tool: String should have at least 1 character"),
        ("overview?all=maybe", "query.all: Input should be a valid boolean"),
        ("flows?all=2", "query.all: Input should be a valid boolean"),
    ],
)
async def test_bad_query_parameters_are_a_clear_422(
    gw: GatewayHarness, query: str, message: str
) -> None:
    resp = await gw.http.get(f"/api/v1/statistics/{query}")
    assert resp.status_code == 422
    error = resp.json()["error"]
    assert error["code"] == "invalid_request"
    assert error["message"].startswith(message), error["message"]
