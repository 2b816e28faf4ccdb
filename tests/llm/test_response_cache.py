"""The response cache: through the resolver against a fake provider that counts requests,
and through the whole gateway (audit, metrics, statistics)."""

import json
from pathlib import Path
from typing import Any

import pytest

from nexflow.config.model import LLMConfig, ResponseCacheConfig
from nexflow.llm import LLMRequest, LLMResponse, ToolCall
from nexflow.llm.cache import ResponseCache
from nexflow.llm.litellm_client import LiteLLMLoader
from nexflow.llm.resolver import ModelResolver
from nexflow.testing.fake_llm import FakeLLMServer, Reply
from nexflow.testing.harness import GatewayHarness

Q = LLMRequest([{"role": "user", "content": "summarize: the sky is blue"}])


def config(server: FakeLLMServer, backup: FakeLLMServer | None = None, **cache: Any) -> LLMConfig:
    def profile(model: str, s: FakeLLMServer) -> dict[str, Any]:
        return {"model": model, "api_base": s.base_url, "api_key": "k", "client": "openai"}

    models = {"cheap": profile("openai/cheap", server)}
    if backup is not None:
        models["backup"] = profile("openai/backup", backup)
    return LLMConfig.model_validate(
        {
            "models": models,
            "routes": {"plan": "cheap", "execute": "cheap", "summarize": "cheap"},
            "fallbacks": {"cheap": ["backup"]} if backup is not None else {},
            "cache": {"routes": ["summarize"], **cache},
            "retry": {"attempts": 1},
        }
    )


async def test_identical_requests_are_answered_once(fake_llm: FakeLLMServer) -> None:
    models = ModelResolver(config(fake_llm), LiteLLMLoader())
    try:
        client = await models.client_for("summarize")
        first = await client.complete(Q)
        second = await client.complete(Q)
        other = await client.complete(LLMRequest([{"role": "user", "content": "different"}]))
        with_tools = await client.complete(
            LLMRequest(Q.messages, [{"type": "function", "function": {"name": "f"}}])
        )
    finally:
        await models.close()
    assert len(fake_llm.requests) == 3  # the repeat made no request
    assert second.content == first.content and second.cached and not first.cached
    assert second.usage.prompt_tokens == 0 and second.usage.cost_usd == 0.0
    assert first.usage.prompt_tokens > 0
    assert not other.cached and not with_tools.cached
    assert (models.cache.hits, len(models.cache)) == (1, 3)


async def test_only_opted_in_routes_and_never_streaming_calls(fake_llm: FakeLLMServer) -> None:
    models = ModelResolver(config(fake_llm), LiteLLMLoader())
    deltas: list[str] = []

    async def sink(text: str) -> None:
        deltas.append(text)

    try:
        plan = await models.client_for("plan")
        await plan.complete(Q)
        await plan.complete(Q)  # the plan route did not opt in
        summarize = await models.client_for("summarize")
        await summarize.complete(Q, sink)
        await summarize.complete(Q, sink)  # someone watches tokens: straight to the provider
    finally:
        await models.close()
    assert len(fake_llm.requests) == 4 and len(models.cache) == 0
    assert "".join(deltas).startswith("Echo:")


async def test_tool_calls_and_fallback_answers_are_not_cached(
    providers: tuple[FakeLLMServer, FakeLLMServer],
) -> None:
    main, backup = providers
    models = ModelResolver(config(main, backup), LiteLLMLoader())
    try:
        client = await models.client_for("summarize")
        main.push(Reply(tool_calls=(("get_time", {}),)), Reply(tool_calls=(("get_time", {}),)))
        assert (await client.complete(Q)).tool_calls
        assert (await client.complete(Q)).tool_calls
        assert len(main.requests) == 2
        main.push(Reply(status=503))
        degraded = await client.complete(Q)
        assert degraded.fallback_from == "openai/cheap"
        again = await client.complete(Q)  # the primary is back: it answers, not the cache
    finally:
        await models.close()
    assert not again.cached and again.model == "openai/cheap"
    assert (len(main.requests), len(backup.requests)) == (4, 1)


def _response(text: str = "ok", **kw: Any) -> LLMResponse:
    return LLMResponse(content=text, model="m", **kw)


def test_entries_expire_after_the_ttl() -> None:
    now = [0.0]
    cache = ResponseCache(ResponseCacheConfig(routes=["r"], ttl_s=10), clock=lambda: now[0])
    assert cache.put("k", _response())
    now[0] = 9.9
    assert cache.get("k") is not None
    now[0] = 10.0
    assert cache.get("k") is None and len(cache) == 0


def test_least_recently_used_goes_first() -> None:
    cache = ResponseCache(ResponseCacheConfig(routes=["r"], max_entries=2))
    cache.put("a", _response("a"))
    cache.put("b", _response("b"))
    assert cache.get("a") is not None  # a is now the most recent
    cache.put("c", _response("c"))
    assert cache.get("b") is None
    assert cache.get("a") is not None and cache.get("c") is not None


def test_what_is_never_stored() -> None:
    cache = ResponseCache(ResponseCacheConfig(routes=["r"]))
    assert not cache.put("t", _response(tool_calls=(ToolCall("1", "f", "{}"),)))
    assert not cache.put("f", _response(fallback_from="strong"))
    assert not cache.put("e", _response(""))
    assert len(cache) == 0


def test_the_key_covers_model_messages_and_tools() -> None:
    key = ResponseCache.key
    assert key("p1", Q) == key("p1", LLMRequest(list(Q.messages)))
    assert key("p1", Q) != key("p2", Q)
    assert key("p1", Q) != key("p1", LLMRequest([{"role": "user", "content": "other"}]))
    assert key("p1", Q) != key("p1", LLMRequest(Q.messages, [{"type": "function"}]))


@pytest.mark.slow
async def test_a_cache_hit_through_the_gateway_is_marked_and_costs_nothing(
    tmp_path: Path, fake_llm: FakeLLMServer
) -> None:
    profile = {"model": "openai/gpt-4o-mini", "api_base": fake_llm.base_url, "client": "openai"}
    llm = {
        "models": {"cheap": profile},
        "cache": {"routes": ["plan"]},
        "ollama": {"probe": False},
    }
    path = tmp_path / "config.yml"
    path.write_text(json.dumps({"llm": llm}), encoding="utf-8")
    async with GatewayHarness(tmp_path / "home", config_file=path, with_llm=False) as gw:
        first = await gw.chat("hello cache")
        second = await gw.chat("hello cache")  # a new session: the same messages
        stats = (await gw.http.get("/api/v1/statistics/overview")).json()
        metrics = (await gw.http.get("/metrics")).text
        assert gw.app is not None
        audit = await gw.app.storage.audit_tail(10, kind="llm_call")
    assert first["reply"] == second["reply"] == "Echo: hello cache"
    assert len(fake_llm.requests) == 1
    assert sorted(r["outcome"] for r in audit) == ["cache_hit", "ok"]
    assert stats["total"]["llm_calls"] == 1  # budgets and cost count the provider call only
    assert stats["total"]["cost_usd"] > 0
    assert 'outcome="cache_hit"' in metrics
