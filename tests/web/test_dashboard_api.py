"""``GET /api/v1/dashboard/{queues,usage}`` and ``GET /api/v1/users`` through the real
gateway: the caller's queues and model use per day and model, everyone's only for the
owner (``?all=true``); the users list (identities, role, permissions, budget, use) for
the owner only."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest
from web_users import as_carol, gateway_with_carol

from nexflow.testing.harness import GatewayHarness


@pytest.fixture
async def gw(tmp_path: Path) -> Any:
    extra = {"budgets": {"per_user_daily_tokens": 100000}}
    async with gateway_with_carol(tmp_path, extra) as harness:
        yield harness


async def get(client: httpx.AsyncClient, path: str) -> dict[str, Any]:
    resp = await client.get(path)
    assert resp.status_code == 200, resp.text
    data: dict[str, Any] = resp.json()
    return data


async def test_queues_count_the_callers_turns_and_replies(gw: GatewayHarness) -> None:
    await gw.chat("hello")
    await gw.chat("again")
    queues = await get(gw.http, "/api/v1/dashboard/queues")
    assert queues["scope"] == "mine"
    assert queues["inbox"] == {"done": 2}
    assert sum(queues["outbox"].values()) == 2
    assert (queues["dead_letters"], queues["pending_approvals"]) == (0, 0)
    async with as_carol(gw) as carol:
        theirs = await get(carol, "/api/v1/dashboard/queues")
        assert theirs["inbox"] == {} and theirs["outbox"] == {}
        assert (await carol.get("/api/v1/dashboard/queues?all=true")).status_code == 403
    everyone = await get(gw.http, "/api/v1/dashboard/queues?all=true")
    assert everyone["scope"] == "all" and everyone["inbox"] == {"done": 2}


async def test_usage_per_day_and_model_is_the_callers_unless_all(gw: GatewayHarness) -> None:
    async with as_carol(gw) as carol:
        resp = await carol.post("/api/v1/chat", json={"message": "hi"})
        assert resp.status_code == 200, resp.text
        theirs = await get(carol, "/api/v1/dashboard/usage?days=7")
        assert (await carol.get("/api/v1/dashboard/usage?all=true")).status_code == 403
    today = f"{datetime.now(UTC):%Y-%m-%d}"
    assert [(r["day"], r["model"], r["calls"]) for r in theirs["rows"]] == [
        (today, "openai/fake-model", 1)
    ]
    assert theirs["rows"][0]["tokens_in"] > 0
    mine = await get(gw.http, "/api/v1/dashboard/usage")
    assert (mine["scope"], mine["days"], mine["rows"]) == ("mine", 14, [])
    everyone = await get(gw.http, "/api/v1/dashboard/usage?all=true")
    assert [r["calls"] for r in everyone["rows"]] == [1]
    assert (await gw.http.get("/api/v1/dashboard/usage?days=0")).status_code == 422


async def test_users_list_is_the_owners_with_identities_budgets_and_use(
    gw: GatewayHarness,
) -> None:
    await gw.chat("hello")
    async with as_carol(gw) as carol:
        assert (await carol.post("/api/v1/chat", json={"message": "hi"})).status_code == 200
        refused = await carol.get("/api/v1/users")
        assert refused.status_code == 403
        assert refused.json()["error"]["code"] == "forbidden"
    users = await get(gw.http, "/api/v1/users")
    assert users["usage_days"] == 30
    by_name = {u["name"]: u for u in users["users"]}
    owner, carol_row = by_name["owner"], by_name["carol"]
    assert owner["role"] == "owner" and carol_row["role"] == "user"
    assert [(i["channel"], i["external_id"]) for i in carol_row["identities"]] == [
        ("web", "user:carol")
    ]
    assert owner["permissions"] == ["filesystem", "network", "secrets", "shell"]
    assert carol_row["permissions"] == []
    assert carol_row["budget"]["daily_limit"] == 100000
    assert carol_row["budget"]["monthly_limit"] is None
    assert carol_row["budget"]["today"] > 0
    assert carol_row["usage"]["calls"] == 1 and carol_row["sessions"] == 1
