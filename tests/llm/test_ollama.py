"""The native Ollama client against the fake Ollama server over loopback, alone and
through the resolver (profiles ``ollama/<model>``, a discovered Ollama, fallbacks)."""

import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from ollama_support import DOWN, TOOLS

from nexflow.config.model import LLMConfig, ModelProfile, OllamaConfig, RetryConfig
from nexflow.llm import LLMRequest, ProviderRejected, ProviderUnavailable
from nexflow.llm.litellm_client import LiteLLMLoader
from nexflow.llm.ollama import OllamaClient, native_base, to_ollama_messages
from nexflow.llm.resolver import ModelResolver
from nexflow.testing.fake_llm import FakeLLMServer, Reply
from nexflow.testing.fake_ollama import FakeOllamaServer
from nexflow.testing.harness import GatewayHarness


@pytest.fixture
async def clients() -> AsyncIterator[list[OllamaClient]]:
    made: list[OllamaClient] = []
    yield made
    for c in made:
        await c.aclose()


def make(
    made: list[OllamaClient], base: str, model: str = "ollama/llama3.2", **kw: Any
) -> OllamaClient:
    c = OllamaClient(model, base, **kw)
    made.append(c)
    return c


@pytest.mark.parametrize("stream", [True, False])
async def test_chat_plain_and_streamed(
    ollama: FakeOllamaServer, clients: list[OllamaClient], stream: bool
) -> None:
    c = make(clients, ollama.base_url, stream=stream)
    deltas: list[str] = []

    async def sink(text: str) -> None:
        deltas.append(text)

    reply = await c.complete(LLMRequest([{"role": "user", "content": "hello there, friend"}]), sink)
    assert reply.content == "Echo: hello there, friend"
    assert reply.model == "ollama/llama3.2"
    assert reply.usage.prompt_tokens > 0 and reply.usage.completion_tokens > 0
    assert reply.usage.cost_usd == 0.0
    sent = ollama.requests[-1]
    assert sent["model"] == "llama3.2" and sent["stream"] is stream
    if stream:
        assert len(deltas) > 1 and "".join(deltas) == reply.content  # NDJSON, piece by piece
    else:
        assert deltas == []
    # Nobody listening: one plain request, even when streaming is on.
    await c.complete(LLMRequest([{"role": "user", "content": "quiet"}]))
    assert ollama.requests[-1]["stream"] is False


@pytest.mark.parametrize("stream", [True, False])
async def test_tool_call_round_trip(
    ollama: FakeOllamaServer, clients: list[OllamaClient], stream: bool
) -> None:
    c = make(clients, ollama.base_url, stream=stream)

    async def sink(_: str) -> None:
        return None

    messages: list[dict[str, Any]] = [{"role": "user", "content": "what time is it?"}]
    first = await c.complete(LLMRequest(messages, TOOLS), sink)
    assert [(t.name, json.loads(t.arguments)) for t in first.tool_calls] == [("get_time", {})]
    assert ollama.requests[-1]["tools"][0]["function"]["name"] == "get_time"
    # The orchestrator appends the call and its result in the OpenAI wire format.
    messages += [
        {
            "role": "assistant",
            "content": "",
            "tool_calls": [c.to_openai() for c in first.tool_calls],
        },
        {
            "role": "tool",
            "tool_call_id": first.tool_calls[0].id,
            "name": "get_time",
            "content": "12:00 UTC",
        },
    ]
    second = await c.complete(LLMRequest(messages, TOOLS), sink)
    assert second.content == "The tool get_time returned: 12:00 UTC"
    sent = ollama.requests[-1]["messages"]
    assert sent[1]["tool_calls"] == [{"function": {"name": "get_time", "arguments": {}}}]
    assert sent[2] == {"role": "tool", "content": "12:00 UTC", "tool_name": "get_time"}


def test_messages_translate_arguments_to_objects_and_name_tool_results() -> None:
    out = to_ollama_messages(
        [
            {"role": "system", "content": None},
            {
                "role": "user",
                "content": [{"type": "text", "text": "a"}, {"type": "text", "text": "b"}],
            },
            {
                "role": "assistant",
                "content": None,
                "tool_calls": [
                    {
                        "id": "c1",
                        "type": "function",
                        "function": {"name": "f", "arguments": '{"x": 1}'},
                    }
                ],
            },
            {"role": "tool", "tool_call_id": "c1", "content": "ok"},  # no name: found by id
        ]
    )
    assert out[0] == {"role": "system", "content": ""}
    assert out[1] == {"role": "user", "content": "ab"}
    assert out[2]["tool_calls"] == [{"function": {"name": "f", "arguments": {"x": 1}}}]
    assert out[3] == {"role": "tool", "content": "ok", "tool_name": "f"}


async def test_options_temperature_and_max_tokens_go_in_options(
    ollama: FakeOllamaServer, clients: list[OllamaClient]
) -> None:
    c = make(
        clients,
        ollama.base_url + "/v1",  # an api_base written for the OpenAI-compatible path works too
        options={"num_ctx": 8192, "seed": 7},
        temperature=0.2,
        max_tokens=64,
        stream=False,
    )
    await c.complete(LLMRequest([{"role": "user", "content": "hi"}]))
    assert ollama.requests[-1]["options"] == {
        "num_ctx": 8192,
        "seed": 7,
        "temperature": 0.2,
        "num_predict": 64,
    }
    assert native_base("http://h:11434/v1/") == "http://h:11434"


async def test_a_model_that_is_not_pulled_says_ollama_pull(
    ollama: FakeOllamaServer, clients: list[OllamaClient]
) -> None:
    c = make(clients, ollama.base_url, model="ollama/qwen2.5:7b")
    with pytest.raises(ProviderRejected) as info:
        await c.complete(LLMRequest([{"role": "user", "content": "hi"}]))
    assert "ollama pull qwen2.5:7b" in info.value.message
    assert not info.value.retryable


async def test_a_model_without_tool_support_is_a_clear_refusal(
    ollama: FakeOllamaServer, clients: list[OllamaClient]
) -> None:
    c = make(clients, ollama.base_url, model="ollama/gemma:2b")
    with pytest.raises(ProviderRejected, match="cannot call tools"):
        await c.complete(LLMRequest([{"role": "user", "content": "time?"}], TOOLS))


async def test_server_errors_and_a_server_that_is_down(
    ollama: FakeOllamaServer, clients: list[OllamaClient]
) -> None:
    ollama.push(Reply(status=500))
    with pytest.raises(ProviderUnavailable, match="500"):
        await make(clients, ollama.base_url).complete(
            LLMRequest([{"role": "user", "content": "x"}])
        )
    with pytest.raises(ProviderUnavailable, match="ollama serve"):
        await make(clients, DOWN).complete(LLMRequest([{"role": "user", "content": "x"}]))


async def test_embeddings_and_model_list(
    ollama: FakeOllamaServer, clients: list[OllamaClient]
) -> None:
    c = make(clients, ollama.base_url, model="ollama/nomic-embed-text")
    vectors = await c.embed(["alpha beta", "gamma"])
    assert len(vectors) == 2 and len(vectors[0]) == len(vectors[1]) > 0
    assert ollama.embed_requests[-1] == {
        "model": "nomic-embed-text",
        "input": ["alpha beta", "gamma"],
    }
    assert await c.embed([]) == []
    assert "llama3.2:latest" in await c.models()
    with pytest.raises(ProviderRejected, match="ollama pull"):
        await make(clients, ollama.base_url, model="ollama/missing").embed(["x"])


def _config(ollama_base: str, fallback: FakeLLMServer | None = None) -> LLMConfig:
    models = {"local": ModelProfile(model="ollama/llama3.2", api_base=ollama_base)}
    fallbacks: dict[str, list[str]] = {}
    if fallback is not None:
        models["cloud"] = ModelProfile(
            model="openai/cloud", api_base=fallback.base_url, api_key="k", client="openai"
        )
        fallbacks = {"local": ["cloud"]}
    return LLMConfig(
        models=models,
        routes={"plan": "local", "execute": "local"},
        fallbacks=fallbacks,
        retry=RetryConfig(attempts=1),
        stream=False,
    )


async def test_ollama_profiles_use_the_native_api(ollama: FakeOllamaServer) -> None:
    models = ModelResolver(_config(ollama.base_url), LiteLLMLoader())
    try:
        reply = await (await models.client_for("plan")).complete(
            LLMRequest([{"role": "user", "content": "native?"}])
        )
    finally:
        await models.close()
    assert reply.content == "Echo: native?" and reply.model == "ollama/llama3.2"
    assert len(ollama.requests) == 1


async def test_ollama_down_falls_back_to_the_next_profile(fake_llm: FakeLLMServer) -> None:
    models = ModelResolver(_config(DOWN, fallback=fake_llm), LiteLLMLoader())
    try:
        reply = await (await models.client_for("plan")).complete(
            LLMRequest([{"role": "user", "content": "anyone?"}])
        )
    finally:
        await models.close()
    assert reply.content == "Echo: anyone?"
    assert reply.model == "openai/cloud" and reply.fallback_from == "ollama/llama3.2"


async def test_a_discovered_ollama_answers_natively(ollama: FakeOllamaServer) -> None:
    config = LLMConfig(ollama=OllamaConfig(base_url=ollama.base_url), stream=False)
    models = ModelResolver(config, LiteLLMLoader())
    try:
        client = await models.client_for()
        reply = await client.complete(LLMRequest([{"role": "user", "content": "found you"}]))
    finally:
        await models.close()
    assert reply.content == "Echo: found you" and reply.model == "ollama/llama3.2:latest"
    assert ollama.requests[-1]["model"] == "llama3.2:latest"


async def test_a_tool_turn_through_the_gateway(tmp_path: Path, ollama: FakeOllamaServer) -> None:
    config = {
        "llm": {
            "models": {"local": {"model": "ollama/llama3.2", "api_base": ollama.base_url}},
            "ollama": {"probe": False},
        }
    }
    path = tmp_path / "config.yml"
    path.write_text(json.dumps(config), encoding="utf-8")
    async with GatewayHarness(tmp_path / "home", config_file=path, with_llm=False) as gw:
        data = await gw.chat("what time is it?")
    assert data["reply"].startswith("The tool get_time returned:")
    assert [m["role"] for m in ollama.requests[-1]["messages"]][-2:] == ["assistant", "tool"]


async def test_embeddings_go_in_batches_with_dimensions_and_options(
    ollama: FakeOllamaServer, clients: list[OllamaClient]
) -> None:
    c = make(clients, ollama.base_url, model="ollama/nomic-embed-text", options={"num_ctx": 512})
    texts = [f"text {i}" for i in range(5)]
    vectors = await c.embed(texts, dimensions=32, batch=2)
    assert [len(v) for v in vectors] == [32] * 5
    assert [r["input"] for r in ollama.embed_requests] == [texts[:2], texts[2:4], texts[4:]]
    assert ollama.embed_requests[0]["dimensions"] == 32
    assert ollama.embed_requests[0]["options"] == {"num_ctx": 512}
    assert "temperature" not in ollama.embed_requests[0]["options"]


async def test_tool_schemas_reach_ollama_whole(
    ollama: FakeOllamaServer, clients: list[OllamaClient]
) -> None:
    # The official ollama package's Tool model would drop the nested and anyOf parts.
    schema = {
        "type": "object",
        "properties": {
            "filter": {
                "type": "object",
                "properties": {"limit": {"type": "integer", "minimum": 1}},
                "required": ["limit"],
            },
            "tag": {"anyOf": [{"type": "string"}, {"type": "null"}], "default": None},
        },
        "required": ["filter"],
        "additionalProperties": False,
    }
    tools = [{"type": "function", "function": {"name": "search", "parameters": schema}}]
    await make(clients, ollama.base_url, stream=False).complete(
        LLMRequest([{"role": "user", "content": "find"}], tools)
    )
    assert ollama.requests[-1]["tools"][0]["function"]["parameters"] == schema
