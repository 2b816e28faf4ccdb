"""The OpenAI-compatible API (/v1/chat/completions, /v1/models) driven by the official
``openai`` SDK against a real gateway and the fake LLM."""

import asyncio
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import httpx
import openai
import pytest
from openai import AsyncOpenAI, OpenAI

from nexflow.testing.fake_llm import Reply, callable_tools
from nexflow.testing.harness import GatewayHarness

TOKEN = "owner-token-0123456789abcdef"
CAROL = "carol-token-0123456789abcdef"


@pytest.fixture
async def gw(tmp_path: Path) -> AsyncIterator[GatewayHarness]:
    env = {"NEXFLOW_WEB__USERS": f'{{"carol": "{CAROL}"}}'}
    async with GatewayHarness(tmp_path / "home", token=TOKEN, env=env) as gateway:
        yield gateway


@pytest.fixture
async def clients(gw: GatewayHarness) -> AsyncIterator[Callable[..., AsyncOpenAI]]:
    """``client(gw, key=...)``: an ``AsyncOpenAI`` for the gateway, closed after the test."""
    made: list[AsyncOpenAI] = []

    def make(gateway: GatewayHarness, key: str = TOKEN) -> AsyncOpenAI:
        made.append(AsyncOpenAI(base_url=gateway.url + "/v1", api_key=key, max_retries=0))
        return made[-1]

    yield make
    for api in made:
        await api.close()


def user_texts(request: dict[str, Any]) -> list[str]:
    return [str(m["content"]) for m in request["messages"] if m["role"] == "user"]


async def test_sync_client_chats_through_a_nexflow_tool_call(gw: GatewayHarness) -> None:
    gw.llm.push(Reply(tool_calls=(("get_time", {}),)))
    gw.llm.push(Reply(text="It is tea time."))

    def ask() -> Any:
        with OpenAI(base_url=gw.url + "/v1", api_key=TOKEN, max_retries=0) as sync:
            return sync.chat.completions.with_raw_response.create(
                model="nexflow",
                messages=[
                    {"role": "system", "content": "ignored: the session's history counts"},
                    {"role": "user", "content": "what time is it?"},
                ],
            )

    raw = await asyncio.to_thread(ask)
    done = raw.parse()
    assert done.choices[0].message.content == "It is tea time."
    assert done.choices[0].finish_reason == "stop"
    assert done.model == "nexflow"
    assert done.usage is not None and done.usage.total_tokens > 0
    assert done.usage.total_tokens == done.usage.prompt_tokens + done.usage.completion_tokens
    # The tool ran on the server: the model saw its result; only the last message was sent.
    first, second = gw.llm.requests
    assert "get_time" in callable_tools(first)  # deferred: named in load_tools
    assert second["messages"][-1]["role"] == "tool"
    assert user_texts(first) == ["what time is it?"]
    assert raw.headers["x-nexflow-session"]


async def test_async_client_and_session_header_continuity(
    gw: GatewayHarness, clients: Callable[..., AsyncOpenAI]
) -> None:
    client = clients
    api = client(gw)
    first = await api.chat.completions.with_raw_response.create(
        model="nexflow", messages=[{"role": "user", "content": "my name is Ada"}]
    )
    session = first.headers["x-nexflow-session"]
    assert first.parse().choices[0].message.content == "Echo: my name is Ada"
    second = await api.chat.completions.create(
        model="nexflow",
        messages=[{"role": "user", "content": "what is my name?"}],
        extra_headers={"X-Nexflow-Session": session},
    )
    assert second.choices[0].message.content == "Echo: what is my name?"
    assert user_texts(gw.llm.requests[-1]) == ["my name is Ada", "what is my name?"]
    # Without a header or user, every request is a new session.
    await api.chat.completions.create(model="nexflow", messages=[{"role": "user", "content": "hi"}])
    assert user_texts(gw.llm.requests[-1]) == ["hi"]


async def test_user_field_maps_to_a_session(
    gw: GatewayHarness, clients: Callable[..., AsyncOpenAI]
) -> None:
    client = clients
    api = client(gw)
    for text in ("one", "two"):
        await api.chat.completions.create(
            model="nexflow", user="editor", messages=[{"role": "user", "content": text}]
        )
    assert user_texts(gw.llm.requests[-1]) == ["one", "two"]
    await api.chat.completions.create(
        model="nexflow", user="other", messages=[{"role": "user", "content": "three"}]
    )
    assert user_texts(gw.llm.requests[-1]) == ["three"]


async def test_streaming_forwards_tokens_and_usage(
    gw: GatewayHarness, clients: Callable[..., AsyncOpenAI]
) -> None:
    client = clients
    gw.llm.push(Reply(text="a reply long enough to arrive in several pieces"))
    stream = await client(gw).chat.completions.create(
        model="nexflow",
        messages=[{"role": "user", "content": "stream please"}],
        stream=True,
        stream_options={"include_usage": True},
    )
    deltas: list[str] = []
    finish: list[str] = []
    usage = None
    async for chunk in stream:
        if chunk.usage is not None:
            usage = chunk.usage
        for choice in chunk.choices:
            if choice.delta.content:
                deltas.append(choice.delta.content)
            if choice.finish_reason:
                finish.append(choice.finish_reason)
    assert "".join(deltas) == "a reply long enough to arrive in several pieces"
    assert len(deltas) > 1  # streamed by the model, forwarded as it came
    assert finish == ["stop"]
    assert usage is not None and usage.total_tokens > 0
    assert gw.llm.requests[-1].get("stream") is True


async def test_streaming_a_tool_call_turn(
    gw: GatewayHarness, clients: Callable[..., AsyncOpenAI]
) -> None:
    client = clients
    gw.llm.push(Reply(tool_calls=(("get_time", {}),)))
    gw.llm.push(Reply(text="Tea time."))
    stream = await client(gw).chat.completions.create(
        model="nexflow", messages=[{"role": "user", "content": "time?"}], stream=True
    )
    text = "".join([c.choices[0].delta.content or "" async for c in stream if c.choices])
    assert text == "Tea time."


async def test_models_list(gw: GatewayHarness, clients: Callable[..., AsyncOpenAI]) -> None:
    client = clients
    models = await client(gw).models.list()
    ids = [m.id for m in models.data]
    assert ids == ["nexflow", "default"]
    assert all(m.owned_by == "nexflow" for m in models.data)
    done = await client(gw).chat.completions.create(
        model="default", messages=[{"role": "user", "content": "x"}]
    )
    assert done.model == "default"
    with pytest.raises(openai.NotFoundError) as err:
        await client(gw).chat.completions.create(
            model="gpt-unknown", messages=[{"role": "user", "content": "x"}]
        )
    assert err.value.code == "model_not_found"


async def test_client_tools_are_refused(
    gw: GatewayHarness, clients: Callable[..., AsyncOpenAI]
) -> None:
    client = clients
    tool = {"type": "function", "function": {"name": "f", "parameters": {"type": "object"}}}
    with pytest.raises(openai.BadRequestError) as err:
        await client(gw).chat.completions.create(
            model="nexflow", messages=[{"role": "user", "content": "x"}], tools=[tool]
        )
    body = err.value.body
    assert isinstance(body, dict)
    assert body["param"] == "tools" and body["type"] == "invalid_request_error"
    assert "server" in body["message"]
    assert gw.llm.requests == []


async def test_wrong_token_is_refused(
    gw: GatewayHarness, clients: Callable[..., AsyncOpenAI]
) -> None:
    client = clients
    with pytest.raises(openai.AuthenticationError):
        await client(gw, key="not-the-token-at-all").models.list()
    with pytest.raises(openai.AuthenticationError):
        await client(gw, key="not-the-token-at-all").chat.completions.create(
            model="nexflow", messages=[{"role": "user", "content": "x"}]
        )
    assert gw.llm.requests == []


async def test_another_users_session_is_not_found(
    gw: GatewayHarness, clients: Callable[..., AsyncOpenAI]
) -> None:
    client = clients
    mine = await client(gw).chat.completions.with_raw_response.create(
        model="nexflow", messages=[{"role": "user", "content": "secret"}]
    )
    session = mine.headers["x-nexflow-session"]
    with pytest.raises(openai.NotFoundError) as err:
        await client(gw, key=CAROL).chat.completions.create(
            model="nexflow",
            messages=[{"role": "user", "content": "show me"}],
            extra_headers={"X-Nexflow-Session": session},
        )
    assert err.value.code == "unknown_session"
    # Carol's own requests work, in her own sessions.
    hers = await client(gw, key=CAROL).chat.completions.create(
        model="nexflow", messages=[{"role": "user", "content": "hello"}]
    )
    assert hers.choices[0].message.content == "Echo: hello"


async def test_bad_bodies_get_openai_errors(gw: GatewayHarness) -> None:
    async with httpx.AsyncClient(base_url=gw.url, headers=gw.http.headers) as http:
        form = await http.post(
            "/v1/chat/completions",
            content=b"model=nexflow",
            headers={"Content-Type": "application/x-www-form-urlencoded"},
        )
        assert form.status_code == 415
        empty = await http.post("/v1/chat/completions", json={"model": "nexflow", "messages": []})
        assert empty.status_code == 400
        assert empty.json()["error"]["type"] == "invalid_request_error"
        extra = await http.post(
            "/v1/chat/completions",
            json={
                "model": "nexflow",
                "messages": [{"role": "user", "content": [{"type": "text", "text": "parts"}]}],
                "temperature": 0.2,
                "tools": None,
            },
        )
        assert extra.status_code == 200, extra.text
        assert extra.json()["choices"][0]["message"]["content"] == "Echo: parts"


async def test_a_parked_turn_answers_with_its_confirmation(
    gw: GatewayHarness, clients: Callable[..., AsyncOpenAI]
) -> None:
    client = clients
    marker = gw.home / "workspace" / "confirmed.txt"
    call = ("run_skill", {"name": "shell-run", "input": {"command": f"touch {marker}"}})
    gw.llm.push(Reply(tool_calls=(call,)))
    gw.llm.push(Reply(text="Done."))
    raw = await client(gw).chat.completions.with_raw_response.create(
        model="nexflow", messages=[{"role": "user", "content": "make the file"}]
    )
    text = raw.parse().choices[0].message.content or ""
    assert text.startswith("Confirmation needed:")
    (approval,) = (await gw.http.get("/api/v1/confirmations")).json()
    assert f"/confirm {approval['id']}" in text
    assert not marker.exists()
    # Answered from the same conversation: the turn resumes on the server.
    answer = await client(gw).chat.completions.create(
        model="nexflow",
        messages=[{"role": "user", "content": f"/confirm {approval['id']}"}],
        extra_headers={"X-Nexflow-Session": raw.headers["x-nexflow-session"]},
    )
    assert answer.choices[0].message.content
    for _ in range(200):
        if marker.exists():
            break
        await asyncio.sleep(0.05)
    assert marker.exists()
    # Streamed, the card is the content too.
    gw.llm.push(Reply(tool_calls=(call,)))
    stream = await client(gw).chat.completions.create(
        model="nexflow", messages=[{"role": "user", "content": "again"}], stream=True
    )
    streamed = "".join([c.choices[0].delta.content or "" async for c in stream if c.choices])
    assert streamed.startswith("Confirmation needed:")


async def test_a_turn_slower_than_the_reply_timeout(tmp_path: Path) -> None:
    env = {"NEXFLOW_WEB__REPLY_TIMEOUT_S": "0.5"}
    async with (
        GatewayHarness(tmp_path / "home", token=TOKEN, env=env) as gateway,
        AsyncOpenAI(base_url=gateway.url + "/v1", api_key=TOKEN, max_retries=0) as api,
    ):
        gateway.llm.push(Reply(text="late", delay_s=1.5))
        gateway.llm.push(Reply(text="later", delay_s=1.5))
        with pytest.raises(openai.APIStatusError) as err:
            await api.chat.completions.create(
                model="nexflow", messages=[{"role": "user", "content": "slow"}]
            )
        assert err.value.status_code == 504
        assert "X-Nexflow-Session" in err.value.message
        assert err.value.response.headers["x-nexflow-session"]
        stream = await api.chat.completions.create(
            model="nexflow", messages=[{"role": "user", "content": "slow"}], stream=True
        )
        with pytest.raises(openai.APIError, match="still running"):
            async for _ in stream:
                pass


async def test_loopback_without_a_gateway_token_needs_no_real_key(tmp_path: Path) -> None:
    async with (
        GatewayHarness(tmp_path / "home") as gateway,
        AsyncOpenAI(base_url=gateway.url + "/v1", api_key="unused", max_retries=0) as api,
    ):
        done = await api.chat.completions.create(
            model="nexflow", messages=[{"role": "user", "content": "hello"}]
        )
        assert done.choices[0].message.content == "Echo: hello"
