"""Fallback chains and circuit breakers: the resolver's real clients against two fake
OpenAI-compatible providers over loopback."""

import asyncio

import pytest

from nexflow.config.model import BreakerConfig, LLMConfig, ModelProfile, RetryConfig
from nexflow.llm import LLMRequest, ProviderRejected, ProviderUnavailable
from nexflow.llm.litellm_client import LiteLLMLoader
from nexflow.llm.resolver import ModelResolver
from nexflow.testing.fake_llm import FakeLLMServer, Reply

HELLO = LLMRequest(messages=[{"role": "user", "content": "hello"}])


@pytest.fixture(params=["openai", "litellm"])
def client_kind(request: pytest.FixtureRequest) -> str:
    return str(request.param)


def resolver(
    strong: FakeLLMServer,
    cheap: FakeLLMServer,
    *,
    client: str = "openai",
    timeout_s: float = 10.0,
    breaker: BreakerConfig | None = None,
    fallbacks: dict[str, list[str]] | None = None,
) -> ModelResolver:
    def profile(model: str, server: FakeLLMServer) -> ModelProfile:
        return ModelProfile.model_validate(
            {
                "model": model,
                "api_base": server.base_url,
                "api_key": "k",
                "client": client,
                "timeout_s": timeout_s,
            }
        )

    config = LLMConfig(
        models={
            "strong": profile("openai/strong", strong),
            "cheap": profile("openai/cheap", cheap),
        },
        routes={"plan": "strong", "execute": "cheap"},
        fallbacks={"strong": ["cheap"]} if fallbacks is None else fallbacks,
        retry=RetryConfig(attempts=2, initial_backoff_s=0.01),
        breaker=breaker or BreakerConfig(),
        stream=False,
    )
    return ModelResolver(config, LiteLLMLoader())


async def test_a_500_from_the_primary_is_answered_by_the_fallback(
    providers: tuple[FakeLLMServer, FakeLLMServer], client_kind: str
) -> None:
    strong, cheap = providers
    strong.push(Reply(status=500), Reply(status=500))  # both attempts of its retry budget
    models = resolver(strong, cheap, client=client_kind)
    try:
        response = await (await models.client_for("plan")).complete(HELLO)
    finally:
        await models.close()
    assert response.content == "Echo: hello"
    assert response.model == "openai/cheap"
    assert response.fallback_from == "openai/strong"
    assert (len(strong.requests), len(cheap.requests)) == (2, 1)


async def test_a_timeout_of_the_primary_is_answered_by_the_fallback(
    providers: tuple[FakeLLMServer, FakeLLMServer],
) -> None:
    strong, cheap = providers
    strong.push(Reply("late", delay_s=1.0), Reply("late", delay_s=1.0))
    models = resolver(strong, cheap, timeout_s=0.3)
    try:
        started = asyncio.get_running_loop().time()
        response = await (await models.client_for("plan")).complete(HELLO)
        elapsed = asyncio.get_running_loop().time() - started
    finally:
        await models.close()
    assert response.model == "openai/cheap"
    assert response.fallback_from == "openai/strong"
    assert elapsed < 0.95  # two 0.3 s attempts and a backoff, not the provider's 1 s


async def test_the_breaker_skips_a_failing_provider_and_probes_it_after_the_cooldown(
    providers: tuple[FakeLLMServer, FakeLLMServer],
) -> None:
    strong, cheap = providers
    strong.push(*[Reply(status=503)] * 4)  # two calls, two attempts each
    models = resolver(strong, cheap, breaker=BreakerConfig(failures=2, cooldown_s=0.4))
    try:
        client = await models.client_for("plan")
        for _ in range(2):
            assert (await client.complete(HELLO)).model == "openai/cheap"
        assert models.breaker.state("strong") == "open"
        seen = len(strong.requests)
        for _ in range(3):  # while open, not one request reaches the failing provider
            response = await client.complete(HELLO)
            assert (response.model, response.fallback_from) == ("openai/cheap", "openai/strong")
        assert len(strong.requests) == seen == 4
        await asyncio.sleep(0.45)
        assert models.breaker.state("strong") == "half-open"
        response = await client.complete(HELLO)  # the probe: the provider has recovered
        assert (response.model, response.fallback_from) == ("openai/strong", None)
        assert len(strong.requests) == 5
        assert models.breaker.state("strong") == "closed"
    finally:
        await models.close()


async def test_a_failed_probe_opens_the_breaker_again(
    providers: tuple[FakeLLMServer, FakeLLMServer],
) -> None:
    strong, cheap = providers
    strong.push(*[Reply(status=500)] * 4)
    models = resolver(
        strong, cheap, breaker=BreakerConfig(failures=1, cooldown_s=0.3), fallbacks={}
    )
    try:
        client = await models.client_for("plan")
        with pytest.raises(ProviderUnavailable, match="HTTP 500"):
            await client.complete(HELLO)
        with pytest.raises(ProviderUnavailable, match="circuit breaker open"):
            await client.complete(HELLO)  # no fallback configured: fails fast
        assert len(strong.requests) == 2
        await asyncio.sleep(0.35)
        with pytest.raises(ProviderUnavailable, match="HTTP 500"):
            await client.complete(HELLO)  # the probe fails …
        assert models.breaker.state("strong") == "open"  # … and the cool-down starts again
        assert len(strong.requests) == 4
    finally:
        await models.close()


async def test_a_rejection_is_not_an_outage(
    providers: tuple[FakeLLMServer, FakeLLMServer],
) -> None:
    strong, cheap = providers
    strong.push(Reply(status=401))
    models = resolver(strong, cheap, breaker=BreakerConfig(failures=1))
    try:
        with pytest.raises(ProviderRejected):
            await (await models.client_for("plan")).complete(HELLO)
    finally:
        await models.close()
    assert cheap.requests == []  # a bad key is not papered over by another provider
    assert models.breaker.state("strong") == "closed"


async def test_routes_pick_profiles_and_one_profile_serves_every_route(
    providers: tuple[FakeLLMServer, FakeLLMServer],
) -> None:
    strong, cheap = providers
    models = resolver(strong, cheap)
    try:
        assert models.routed_models() == {
            "plan": "openai/strong",
            "execute": "openai/cheap",
            "summarize": "openai/cheap",  # unrouted kinds use the execute route
            "heartbeat": "openai/cheap",
            "embedding": "openai/cheap",
        }
    finally:
        await models.close()
    single = ModelResolver(
        LLMConfig(models={"default": ModelProfile(model="openai/only")}), LiteLLMLoader()
    )
    assert set(single.routed_models().values()) == {"openai/only"}
    await single.close()


def test_fallbacks_must_name_profiles() -> None:
    with pytest.raises(ValueError, match=r"llm\.fallbacks\.strong names model profile 'nope'"):
        LLMConfig(models={"strong": ModelProfile(model="openai/x")}, fallbacks={"strong": ["nope"]})
