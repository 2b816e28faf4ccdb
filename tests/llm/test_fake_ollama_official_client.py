"""The fake Ollama server driven by the official ``ollama`` package (ollama-python).

Proves the fake speaks what the real client expects: the package parses every answer
into its pydantic models (``ChatResponse``, ``EmbedResponse``, ``ListResponse``) and
turns error statuses into ``ResponseError`` the way it does against a real Ollama. If
the fake drifted from Ollama's API, these tests would fail before the Nexflow client's.
"""

from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest

# A dev dependency (Nexflow's own client answers for ollama/<model>; docs/llm.md says why).
from ollama import AsyncClient, ChatResponse, ResponseError
from ollama_support import DOWN, TOOLS

from nexflow.testing.fake_llm import FAKE_EMBEDDING_DIMENSIONS, Reply, fake_embedding
from nexflow.testing.fake_ollama import FakeOllamaServer


@pytest.fixture
async def client(ollama: FakeOllamaServer) -> AsyncIterator[AsyncClient]:
    c = AsyncClient(host=ollama.base_url, timeout=10.0)
    yield c
    await c.close()  # type: ignore[no-untyped-call]  # untyped in ollama


async def test_chat_answers_a_chat_response(client: AsyncClient, ollama: FakeOllamaServer) -> None:
    reply = await client.chat("llama3.2", [{"role": "user", "content": "hello there"}])
    assert isinstance(reply, ChatResponse)
    assert reply.message.role == "assistant" and reply.message.content == "Echo: hello there"
    assert reply.done and reply.done_reason == "stop" and reply.model == "llama3.2"
    assert (reply.prompt_eval_count or 0) > 0 and (reply.eval_count or 0) > 0
    assert reply.created_at is not None
    assert ollama.requests[-1]["stream"] is False  # the package says so explicitly


async def test_a_streamed_chat_arrives_in_pieces_then_a_final_object(
    client: AsyncClient, ollama: FakeOllamaServer
) -> None:
    text = "a streamed answer of several chunks"
    chunks = [
        c
        async for c in await client.chat(
            "llama3.2", [{"role": "user", "content": text}], stream=True
        )
    ]
    assert len(chunks) > 2
    assert "".join(c.message.content or "" for c in chunks) == f"Echo: {text}"
    assert [c.done for c in chunks] == [False] * (len(chunks) - 1) + [True]
    final = chunks[-1]
    assert final.done_reason == "stop" and (final.eval_count or 0) > 0
    assert ollama.requests[-1]["stream"] is True


@pytest.mark.parametrize("stream", [False, True])
async def test_a_tool_call_and_its_result(
    client: AsyncClient, ollama: FakeOllamaServer, stream: bool
) -> None:
    messages: list[dict[str, Any]] = [{"role": "user", "content": "what time is it?"}]
    if stream:
        chunks = [
            c async for c in await client.chat("llama3.2", messages, tools=TOOLS, stream=True)
        ]
        calls = [t for c in chunks for t in c.message.tool_calls or ()]
    else:
        reply = await client.chat("llama3.2", messages, tools=TOOLS)
        calls = list(reply.message.tool_calls or ())
    assert [(t.function.name, dict(t.function.arguments)) for t in calls] == [("get_time", {})]
    assert ollama.requests[-1]["tools"][0]["function"]["name"] == "get_time"
    # The assistant's call goes back with object arguments, the result names its tool.
    messages += [
        {"role": "assistant", "content": "", "tool_calls": [t.model_dump() for t in calls]},
        {"role": "tool", "content": "12:00 UTC", "tool_name": "get_time"},
    ]
    second = await client.chat("llama3.2", messages, tools=TOOLS)
    assert second.message.content == "The tool get_time returned: 12:00 UTC"
    sent = ollama.requests[-1]["messages"]
    assert sent[1]["tool_calls"][0]["function"] == {"name": "get_time", "arguments": {}}


async def test_options_reach_the_server(client: AsyncClient, ollama: FakeOllamaServer) -> None:
    await client.chat(
        "llama3.2",
        [{"role": "user", "content": "hi"}],
        options={"num_ctx": 8192, "temperature": 0.2, "num_predict": 64},
    )
    assert ollama.requests[-1]["options"] == {
        "num_ctx": 8192,
        "temperature": 0.2,
        "num_predict": 64,
    }


async def test_embed_one_text_many_texts_and_dimensions(
    client: AsyncClient, ollama: FakeOllamaServer
) -> None:
    many = await client.embed("nomic-embed-text", ["alpha beta", "gamma"])
    assert [list(v) for v in many.embeddings] == [
        fake_embedding("alpha beta", FAKE_EMBEDDING_DIMENSIONS),
        fake_embedding("gamma", FAKE_EMBEDDING_DIMENSIONS),
    ]
    one = await client.embed("nomic-embed-text", "alpha beta")
    assert len(one.embeddings) == 1 and list(one.embeddings[0]) == list(many.embeddings[0])
    short = await client.embed("nomic-embed-text", ["x"], dimensions=32, options={"num_ctx": 512})
    assert len(short.embeddings[0]) == 32
    assert ollama.embed_requests[-1] == {
        "model": "nomic-embed-text",
        "input": ["x"],
        "dimensions": 32,
        "options": {"num_ctx": 512},
    }


async def test_the_model_list(client: AsyncClient) -> None:
    listed = await client.list()
    assert [m.model for m in listed.models] == [
        "llama3.2:latest",
        "nomic-embed-text:latest",
        "gemma:2b",
    ]
    first = listed.models[0]
    assert first.digest and first.size and first.modified_at is not None
    assert first.details is not None and first.details.family == "llama"


async def test_a_model_that_is_not_pulled_is_a_404_response_error(client: AsyncClient) -> None:
    with pytest.raises(ResponseError) as chat:
        await client.chat("qwen2.5:7b", [{"role": "user", "content": "hi"}])
    assert chat.value.status_code == 404
    assert chat.value.error == 'model "qwen2.5:7b" not found, try pulling it first'
    with pytest.raises(ResponseError) as streamed:
        async for _ in await client.chat(
            "qwen2.5:7b", [{"role": "user", "content": "hi"}], stream=True
        ):
            pass
    assert streamed.value.status_code == 404 and "not found" in streamed.value.error
    with pytest.raises(ResponseError) as embed:
        await client.embed("mxbai-embed-large", ["x"])
    assert embed.value.status_code == 404 and "try pulling it first" in embed.value.error


async def test_other_error_statuses(client: AsyncClient, ollama: FakeOllamaServer) -> None:
    with pytest.raises(ResponseError) as no_tools:
        await client.chat("gemma:2b", [{"role": "user", "content": "time?"}], tools=TOOLS)
    assert no_tools.value.status_code == 400
    assert no_tools.value.error.endswith("gemma:2b does not support tools")
    ollama.push(Reply(status=500))
    with pytest.raises(ResponseError) as failed:
        await client.chat("llama3.2", [{"role": "user", "content": "x"}])
    assert failed.value.status_code == 500 and failed.value.error == "scripted failure 500"
    # String arguments in an assistant's tool call: Ollama's JSON decoding refuses them.
    # The package refuses to build such a message, so this request goes by plain httpx.
    bad = {
        "model": "llama3.2",
        "stream": False,
        "messages": [
            {
                "role": "assistant",
                "content": "",
                "tool_calls": [{"function": {"name": "get_time", "arguments": "{}"}}],
            }
        ],
    }
    async with httpx.AsyncClient() as http:
        resp = await http.post(f"{ollama.base_url}/api/chat", json=bad)
    decoding = ResponseError(resp.text, resp.status_code)  # how the package reads an error
    assert decoding.status_code == 400 and "cannot unmarshal" in decoding.error


async def test_a_server_that_is_down_is_a_connection_error() -> None:
    down = AsyncClient(host=DOWN, timeout=2.0)
    try:
        with pytest.raises(ConnectionError, match="Failed to connect to Ollama"):
            await down.chat("llama3.2", [{"role": "user", "content": "x"}])
        with pytest.raises(ConnectionError):
            await down.list()
    finally:
        await down.close()  # type: ignore[no-untyped-call]  # untyped in ollama
