"""Routing by prompt size: ``llm.size_routes`` through the resolver's real clients against
fake OpenAI-compatible providers over loopback."""

from collections.abc import AsyncIterator
from typing import Any

import pytest
from pydantic import ValidationError

from nexflow.config.model import LLMConfig, SizeRoute
from nexflow.llm import LLMRequest
from nexflow.llm.litellm_client import LiteLLMLoader
from nexflow.llm.policy import estimate_tokens, matches
from nexflow.llm.resolver import ModelResolver
from nexflow.testing.fake_llm import FakeLLMServer


@pytest.fixture
async def long_llm() -> AsyncIterator[FakeLLMServer]:
    server = FakeLLMServer()
    await server.start()
    yield server
    await server.stop()


def config(
    strong: FakeLLMServer, cheap: FakeLLMServer, long: FakeLLMServer, rules: list[dict[str, Any]]
) -> LLMConfig:
    def profile(model: str, server: FakeLLMServer) -> dict[str, Any]:
        return {"model": model, "api_base": server.base_url, "api_key": "k", "client": "openai"}

    return LLMConfig.model_validate(
        {
            "models": {
                "strong": profile("openai/strong", strong),
                "cheap": profile("openai/cheap", cheap),
                "long": profile("openai/long", long),
            },
            "routes": {"plan": "strong", "execute": "cheap"},
            "size_routes": rules,
            "stream": False,
        }
    )


def ask(chars: int) -> LLMRequest:
    return LLMRequest([{"role": "user", "content": "x" * chars}])


async def answer(models: ModelResolver, route: str, request: LLMRequest) -> str:
    return (await (await models.client_for(route)).complete(request)).model


async def test_a_long_prompt_goes_to_the_long_context_profile(
    providers: tuple[FakeLLMServer, FakeLLMServer], long_llm: FakeLLMServer
) -> None:
    strong, cheap = providers
    models = ModelResolver(
        config(strong, cheap, long_llm, [{"above_tokens": 1000, "profile": "long"}]),
        LiteLLMLoader(),
    )
    try:
        assert await answer(models, "plan", ask(200)) == "openai/strong"
        assert await answer(models, "plan", ask(8000)) == "openai/long"  # ~2000 tokens
        assert await answer(models, "execute", ask(8000)) == "openai/long"  # every route
        assert await answer(models, "execute", ask(200)) == "openai/cheap"
    finally:
        await models.close()
    assert (len(strong.requests), len(cheap.requests), len(long_llm.requests)) == (1, 1, 2)


async def test_rules_apply_in_order_and_only_to_their_routes(
    providers: tuple[FakeLLMServer, FakeLLMServer], long_llm: FakeLLMServer
) -> None:
    strong, cheap = providers
    rules = [
        {"above_tokens": 1000, "profile": "long"},
        {"below_tokens": 100, "profile": "cheap", "routes": ["plan"]},  # short plans are cheap
        {"above_tokens": 10, "profile": "strong"},  # never reached for > 1000
    ]
    models = ModelResolver(config(strong, cheap, long_llm, rules), LiteLLMLoader())
    try:
        assert await answer(models, "plan", ask(40)) == "openai/cheap"
        assert await answer(models, "plan", ask(8000)) == "openai/long"
        assert await answer(models, "execute", ask(40)) == "openai/strong"  # third rule
    finally:
        await models.close()


def test_estimate_counts_text_tool_calls_and_schemas() -> None:
    base = estimate_tokens([{"role": "user", "content": "a" * 400}])
    assert base == 100 + 4
    parts = estimate_tokens([{"role": "user", "content": [{"type": "text", "text": "a" * 400}]}])
    assert parts == base
    with_call = estimate_tokens(
        [
            {
                "role": "assistant",
                "content": None,
                "tool_calls": [{"function": {"name": "f", "arguments": "b" * 399}}],
            }
        ]
    )
    assert with_call == base
    tools = [{"type": "function", "function": {"name": "t", "parameters": {}}}]
    assert estimate_tokens([{"role": "user", "content": "a" * 400}], tools) > base


def test_matching_and_validation() -> None:
    rule = SizeRoute(profile="p", above_tokens=10, routes=["plan"])
    assert matches(rule, "plan", 11) and not matches(rule, "plan", 10)
    assert not matches(rule, "execute", 1000)
    assert matches(SizeRoute(profile="p", below_tokens=10), "any", 9)
    with pytest.raises(ValidationError, match="exactly one"):
        SizeRoute(profile="p")
    with pytest.raises(ValidationError, match="exactly one"):
        SizeRoute(profile="p", above_tokens=1, below_tokens=5)
    with pytest.raises(ValidationError, match=r"size_routes\[0\] names model profile 'nope'"):
        LLMConfig.model_validate(
            {
                "models": {"a": {"model": "openai/a"}},
                "size_routes": [{"above_tokens": 5, "profile": "nope"}],
            }
        )
