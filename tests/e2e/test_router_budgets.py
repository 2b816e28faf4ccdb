"""Routing by task kind, budgets and usage statistics through the whole gateway: two fake
providers as two model profiles, the real OpenAI-compatible client, real HTTP."""

import json
import sqlite3
from pathlib import Path
from typing import Any

from nexflow.testing.fake_llm import FakeLLMServer, Reply
from nexflow.testing.harness import GatewayHarness


def config_file(
    tmp_path: Path,
    strong: FakeLLMServer,
    cheap: FakeLLMServer,
    budgets: dict[str, Any],
    retry: int = 3,
) -> Path:
    def profile(model: str, server: FakeLLMServer) -> dict[str, Any]:
        return {"model": model, "api_base": server.base_url, "api_key": "k", "client": "openai"}

    config = {
        "llm": {
            "models": {
                "strong": profile("openai/strong", strong),
                "cheap": profile("openai/cheap", cheap),
            },
            "routes": {"plan": "strong", "execute": "cheap"},
            "fallbacks": {"strong": ["cheap"]},
            "ollama": {"probe": False},
            "retry": {"attempts": retry},
        },
        "budgets": budgets,
    }
    path = tmp_path / "config.yml"
    path.write_text(json.dumps(config), encoding="utf-8")  # JSON is YAML
    return path


async def test_plan_goes_to_the_strong_model_and_tool_steps_to_the_cheap_one(
    tmp_path: Path, providers: tuple[FakeLLMServer, FakeLLMServer]
) -> None:
    strong, cheap = providers
    path = config_file(tmp_path, strong, cheap, {})
    async with GatewayHarness(tmp_path / "home", config_file=path, with_llm=False) as gw:
        data = await gw.chat("what time is it?")
    assert data["reply"].startswith("The tool get_time returned:")
    assert [r["model"] for r in strong.requests] == ["strong"]
    assert strong.requests[0]["messages"][-1]["role"] == "user"  # the planning call
    assert [r["model"] for r in cheap.requests] == ["cheap"]
    assert cheap.requests[0]["messages"][-1]["role"] == "tool"  # the step after the tool


async def test_a_user_at_the_hard_limit_is_refused_without_a_model_call(
    tmp_path: Path, providers: tuple[FakeLLMServer, FakeLLMServer]
) -> None:
    strong, cheap = providers
    path = config_file(tmp_path, strong, cheap, {"per_user_daily_tokens": 1})
    async with GatewayHarness(tmp_path / "home", config_file=path, with_llm=False) as gw:
        first = await gw.chat("hello")
        assert first["reply"].startswith("Echo: hello")
        # the turn took the user past the soft ratio (and the limit): the reply says so
        assert first["reply"].endswith("⚠ 100% of your daily budget of 1 tokens is used.")
        calls = len(strong.requests) + len(cheap.requests)
        second = await gw.chat("hello again")
        assert second["error"] == "budget_exhausted"
        assert "daily budget of 1 tokens" in second["reply"]
        assert len(strong.requests) + len(cheap.requests) == calls == 1

        resp = await gw.http.get("/api/v1/statistics/overview")
        assert resp.status_code == 200
        stats = resp.json()
        status = await gw.chat("/status")
    for block in (stats["total"], stats["today"]):
        assert block["llm_calls"] == 1
        assert block["messages_in"] == 2  # the refused message is stored too
        assert block["tokens_in"] > 0 and block["tokens_out"] > 0
        assert set(block["per_model"]) == {"openai/strong"}
        assert block["per_model"]["openai/strong"]["llm_calls"] == 1
    tokens = stats["today"]["tokens_in"] + stats["today"]["tokens_out"]
    assert f"LLM today: 1 calls, {tokens} tokens, $" in status["reply"]
    assert f"your tokens: today {tokens} of 1, this month {tokens} of unlimited" in status["reply"]


async def test_a_turn_stops_at_the_limit_between_its_model_calls(
    tmp_path: Path, providers: tuple[FakeLLMServer, FakeLLMServer]
) -> None:
    """The budget gate reserves before every call: the planning call is admitted (nothing
    used yet), the one after the tool result finds the limit passed and is never sent. The
    turn goes past the limit by at most that one call's reservation."""
    strong, cheap = providers
    path = config_file(tmp_path, strong, cheap, {"per_user_daily_tokens": 40})
    async with GatewayHarness(tmp_path / "home", config_file=path, with_llm=False) as gw:
        data = await gw.chat("what time is it?")
        stats = (await gw.http.get("/api/v1/statistics/overview")).json()
    assert data["error"] == "budget_exhausted"
    assert "daily budget of 40 tokens" in data["reply"]
    assert [c["name"] for c in data["tool_calls"]] == ["get_time"]  # the tool still ran
    assert len(strong.requests) == 1 and cheap.requests == []  # no call past the limit
    used = stats["today"]["tokens_in"] + stats["today"]["tokens_out"]
    first = strong.requests[0]
    reservation = (len(json.dumps(first["messages"]) + json.dumps(first["tools"])) + 3) // 4
    assert 40 < used <= 40 + reservation + 1024  # + budgets.default_reserve_tokens


async def test_without_budgets_replies_carry_no_warning(
    tmp_path: Path, providers: tuple[FakeLLMServer, FakeLLMServer]
) -> None:
    strong, cheap = providers
    path = config_file(tmp_path, strong, cheap, {})
    async with GatewayHarness(tmp_path / "home", config_file=path, with_llm=False) as gw:
        for _ in range(2):
            assert (await gw.chat("hello"))["reply"] == "Echo: hello"


async def test_a_fallback_answer_is_audited_with_the_model_that_failed(
    tmp_path: Path, providers: tuple[FakeLLMServer, FakeLLMServer]
) -> None:
    strong, cheap = providers
    strong.push(Reply(status=502))
    path = config_file(tmp_path, strong, cheap, {}, retry=1)
    async with GatewayHarness(tmp_path / "home", config_file=path, with_llm=False) as gw:
        assert (await gw.chat("hello"))["reply"] == "Echo: hello"
        stats = (await gw.http.get("/api/v1/statistics/overview")).json()
    assert set(stats["total"]["per_model"]) == {"openai/cheap"}
    with sqlite3.connect(tmp_path / "home" / "nexflow.db") as db:
        rows = db.execute(
            "SELECT name, outcome, json_extract(data, '$.fallback_from'), "
            "json_extract(data, '$.route') FROM audit WHERE kind='llm_call' ORDER BY id"
        ).fetchall()
    assert rows == [("openai/cheap", "ok", "openai/strong", "plan")]
