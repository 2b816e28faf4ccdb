"""Both LLM clients — litellm and the built-in OpenAI-compatible one — against the fake
OpenAI-compatible server over loopback."""

import asyncio
from collections.abc import AsyncIterator

import pytest
from aiohttp import web

from nexflow.config.model import LLMConfig, ModelProfile, OllamaConfig, RetryConfig
from nexflow.llm import (
    LLMClient,
    LLMRequest,
    NoModelConfigured,
    ProviderRejected,
    ProviderUnavailable,
    litellm_client,
)
from nexflow.llm import resolver as resolver_module
from nexflow.llm.litellm_client import LiteLLMClient, LiteLLMLoader, ModelTarget
from nexflow.llm.openai_compat import OpenAICompatClient
from nexflow.llm.prices import OWN_PRICE_FILE, PriceMap
from nexflow.llm.resolver import ModelResolver, client_kind
from nexflow.llm.retry import RetryingClient
from nexflow.testing.fake_llm import FakeLLMServer, Reply

TOOLS = [
    {
        "type": "function",
        "function": {
            "name": "get_time",
            "description": "t",
            "parameters": {"type": "object", "properties": {}},
        },
    }
]


@pytest.fixture
async def loader() -> AsyncIterator[LiteLLMLoader]:
    loader = LiteLLMLoader()
    yield loader
    await loader.close()


@pytest.fixture(params=["litellm", "openai"])
def kind(request: pytest.FixtureRequest) -> str:
    return str(request.param)


_OPEN: list[OpenAICompatClient] = []


@pytest.fixture(autouse=True)
async def _close_clients() -> AsyncIterator[None]:
    yield
    while _OPEN:
        await _OPEN.pop().aclose()


def client(
    fake: FakeLLMServer | None, loader: LiteLLMLoader, stream: bool, kind: str = "litellm"
) -> LLMClient:
    base = fake.base_url if fake is not None else "http://127.0.0.1:9/v1"
    target = ModelTarget("openai/fake", api_base=base, api_key="k")
    if kind == "openai":
        _OPEN.append(OpenAICompatClient(target, PriceMap(), stream))
        return _OPEN[-1]
    return LiteLLMClient(target, loader, stream)


@pytest.mark.parametrize("stream", [True, False])
async def test_text_and_tool_calls(
    fake_llm: FakeLLMServer, loader: LiteLLMLoader, stream: bool, kind: str
) -> None:
    c = client(fake_llm, loader, stream, kind)
    deltas: list[str] = []

    async def sink(text: str) -> None:
        deltas.append(text)

    reply = await c.complete(LLMRequest([{"role": "user", "content": "hello there, friend"}]), sink)
    assert reply.content == "Echo: hello there, friend"
    assert reply.usage.prompt_tokens > 0 and reply.usage.completion_tokens > 0
    assert ("".join(deltas) == reply.content) if stream else deltas == []
    call = await c.complete(LLMRequest([{"role": "user", "content": "what time is it"}], TOOLS))
    assert [t.name for t in call.tool_calls] == ["get_time"]
    assert call.tool_calls[0].arguments == "{}"
    assert fake_llm.requests[-1]["tools"][0]["function"]["name"] == "get_time"
    assert bool(fake_llm.requests[0].get("stream")) is stream
    # Without a live listener there is nothing to stream to: one plain request.
    await c.complete(LLMRequest([{"role": "user", "content": "quiet"}]))
    assert not fake_llm.requests[-1].get("stream")


async def test_errors_are_translated(
    fake_llm: FakeLLMServer, loader: LiteLLMLoader, kind: str
) -> None:
    c = client(fake_llm, loader, False, kind)
    fake_llm.push(Reply(status=503))
    with pytest.raises(ProviderUnavailable, match="503"):
        await c.complete(LLMRequest([{"role": "user", "content": "x"}]))
    fake_llm.push(Reply(status=401))
    with pytest.raises(ProviderRejected, match="API key"):
        await c.complete(LLMRequest([{"role": "user", "content": "x"}]))
    fake_llm.push(Reply(status=400))
    with pytest.raises(ProviderRejected, match="400"):
        await c.complete(LLMRequest([{"role": "user", "content": "x"}]))


async def test_provider_down_is_unavailable(loader: LiteLLMLoader, kind: str) -> None:
    with pytest.raises(ProviderUnavailable, match="unreachable"):
        await client(None, loader, False, kind).complete(
            LLMRequest([{"role": "user", "content": "x"}])
        )


async def test_retry_then_success(fake_llm: FakeLLMServer, loader: LiteLLMLoader) -> None:
    fake_llm.push(Reply(status=500), Reply(status=429))
    delays: list[float] = []

    async def no_sleep(delay: float) -> None:
        delays.append(delay)

    retrying = RetryingClient(
        client(fake_llm, loader, False), RetryConfig(attempts=3), sleep=no_sleep
    )
    reply = await retrying.complete(LLMRequest([{"role": "user", "content": "again"}]))
    assert reply.content == "Echo: again"
    assert len(delays) == 2 and delays[1] > delays[0] * 0.9
    assert len(fake_llm.requests) == 3


async def test_retry_gives_up_and_does_not_retry_rejections(
    fake_llm: FakeLLMServer, loader: LiteLLMLoader
) -> None:
    async def no_sleep(_: float) -> None:
        return None

    retrying = RetryingClient(
        client(fake_llm, loader, False), RetryConfig(attempts=2), sleep=no_sleep
    )
    fake_llm.push(Reply(status=500), Reply(status=500))
    with pytest.raises(ProviderUnavailable):
        await retrying.complete(LLMRequest([{"role": "user", "content": "x"}]))
    fake_llm.push(Reply(status=400))
    with pytest.raises(ProviderRejected):
        await retrying.complete(LLMRequest([{"role": "user", "content": "x"}]))
    assert len(fake_llm.requests) == 3


async def test_retry_delays_follow_llm_retry_with_half_jitter(
    fake_llm: FakeLLMServer, loader: LiteLLMLoader
) -> None:
    fake_llm.push(Reply(status=503), Reply(status=503), Reply(status=503))
    delays: list[float] = []
    told: list[tuple[int, float]] = []

    async def no_sleep(delay: float) -> None:
        delays.append(delay)

    retrying = RetryingClient(
        client(fake_llm, loader, False),
        RetryConfig(attempts=4, initial_backoff_s=1.0, max_backoff_s=3.0),
        sleep=no_sleep,
        on_retry=lambda exc, attempt, delay: told.append((attempt, delay)),
        rand=lambda: 0.0,  # the low end of the jitter: half of each delay
    )
    reply = await retrying.complete(LLMRequest([{"role": "user", "content": "late"}]))
    assert reply.content == "Echo: late"
    assert delays == [0.5, 1.0, 1.5]  # 1 s, 2 s, then capped at 3 s; halved
    assert told == [(1, 0.5), (2, 1.0), (3, 1.5)]


async def test_no_model_and_no_ollama_explains_how_to_configure(loader: LiteLLMLoader) -> None:
    resolver = ModelResolver(LLMConfig(ollama=OllamaConfig(base_url="http://127.0.0.1:9")), loader)
    with pytest.raises(NoModelConfigured) as info:
        await resolver.client_for()
    assert "NEXFLOW_LLM_MODEL" in info.value.message and "config.yml" in info.value.message
    status = await resolver.status()
    assert not status.configured and status.help is not None


async def test_ollama_is_found_when_it_answers() -> None:
    app = web.Application()

    async def tags(_: web.Request) -> web.Response:
        return web.json_response({"models": [{"name": "llama3.2:latest"}]})

    app.router.add_get("/api/tags", tags)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    try:
        resolver = ModelResolver(
            LLMConfig(ollama=OllamaConfig(base_url=f"http://127.0.0.1:{port}")), LiteLLMLoader()
        )
        status = await resolver.status()
        assert status.configured and status.model == "ollama/llama3.2:latest"
        assert status.source == "ollama"
    finally:
        await runner.cleanup()


async def test_warm_imports_in_background() -> None:
    loader = LiteLLMLoader()
    loader.warm()
    module = await asyncio.wait_for(loader.get(), 60)
    assert hasattr(module, "acompletion")
    await loader.close()


async def test_price_map_costs_known_models_without_importing_litellm() -> None:
    prices = PriceMap()
    assert prices.cost("openai/gpt-4o-mini", 1_000_000, 0) == pytest.approx(0.15)
    assert prices.cost("gpt-4o-mini", 0, 1_000_000) == pytest.approx(0.60)
    assert prices.cost("openai/no-such-model", 10, 10) == 0.0


async def test_nexflows_own_price_file_matches_litellms() -> None:
    """prices.json (used when litellm, an extra, is not installed) holds the same prices."""
    own, theirs = PriceMap(OWN_PRICE_FILE), PriceMap()
    for model in ("openai/gpt-4o-mini", "gpt-4o", "anthropic/claude-sonnet-4-5"):
        assert own.cost(model, 1000, 1000) == pytest.approx(theirs.cost(model, 1000, 1000))
    assert own.cost("gpt-4o-mini", 1_000_000, 0) == pytest.approx(0.15)


async def test_a_litellm_profile_without_litellm_says_how_to_install_it(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(litellm_client, "installed", lambda: False)
    client = LiteLLMClient(ModelTarget("anthropic/claude-sonnet-4-5"), LiteLLMLoader())
    request = LLMRequest(messages=[{"role": "user", "content": "hi"}])
    with pytest.raises(ProviderRejected, match=r"anthropic/claude-sonnet-4-5 .*nexflow\[litellm\]"):
        await client.complete(request)


@pytest.mark.parametrize(
    ("profile", "native"),
    [
        (ModelProfile(model="openai/x", api_base="http://h/v1"), True),
        (ModelProfile(model="openai/x"), True),  # OpenAI's own endpoint
        (ModelProfile(model="anthropic/claude", api_base="http://h"), False),
        (ModelProfile(model="openai/x", api_base="http://h/v1", client="litellm"), False),
        (ModelProfile(model="groq/x", api_base="http://h/v1", client="openai"), True),
    ],
)
def test_client_choice(profile: ModelProfile, native: bool) -> None:
    assert (client_kind(profile) == "openai") is native


@pytest.mark.parametrize(
    ("profile", "kind"),
    [
        (ModelProfile(model="ollama/llama3.2"), "ollama"),
        (ModelProfile(model="ollama_chat/llama3.2", api_base="http://h:11434"), "ollama"),
        (ModelProfile(model="ollama/llama3.2", client="litellm"), "litellm"),  # the way back
        (ModelProfile(model="ollama/x", api_base="http://h:11434/v1", client="openai"), "openai"),
        (ModelProfile(model="local/smollm2"), "local"),
        (ModelProfile(model="anthropic/claude-sonnet-4-5"), "litellm"),
    ],
)
def test_client_kind(profile: ModelProfile, kind: str) -> None:
    assert client_kind(profile) == kind


async def test_openai_profile_without_a_key_uses_openai_api_key(
    fake_llm: FakeLLMServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``openai/<model>`` with no api_base is OpenAI's endpoint through the built-in client;
    with no key in the profile it reads OPENAI_API_KEY, as litellm did for it before."""
    monkeypatch.setattr(resolver_module, "OPENAI_API_BASE", fake_llm.base_url)
    monkeypatch.setenv("OPENAI_API_KEY", "sk-from-env")
    request = LLMRequest(messages=[{"role": "user", "content": "hi"}])
    for profile, sent in (
        (ModelProfile(model="openai/fake"), "Bearer sk-from-env"),
        (ModelProfile(model="openai/fake", api_key="sk-profile"), "Bearer sk-profile"),
    ):
        resolver = ModelResolver(LLMConfig(models={"default": profile}), LiteLLMLoader())
        try:
            await (await resolver.client_for()).complete(request)
        finally:
            await resolver.close()
        assert fake_llm.authorizations[-1] == sent
