"""A lean client for OpenAI-compatible chat endpoints (``/v1/chat/completions``).

litellm costs about 20 ms of CPU and 170 MB per process for what is, against an
OpenAI-compatible server, one HTTP request; this client speaks the same wire format
directly over one pooled ``aiohttp.ClientSession`` (streaming SSE included; aiohttp's
pool costs a fraction of httpx's per request under concurrency). It is used for
``openai/<model>`` profiles that name an ``api_base`` and for a discovered Ollama;
``llm.models.<name>.client: litellm`` forces litellm.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import aiohttp

from nexflow.llm import wire_json
from nexflow.llm.client import DeltaSink, LLMRequest, LLMResponse, ToolCall, Usage
from nexflow.llm.errors import LLMError, ProviderUnavailable, for_status, unreachable
from nexflow.llm.litellm_client import ModelTarget
from nexflow.llm.prices import PriceMap

_JSON = {"Content-Type": "application/json"}


class OpenAICompatClient:
    def __init__(self, target: ModelTarget, prices: PriceMap, stream: bool = True) -> None:
        if not target.api_base:
            raise ValueError("an OpenAI-compatible client needs an api_base")
        self._target = target
        self._prices = prices
        self._stream = stream
        self._wire_model = target.model.split("/", 1)[1] if "/" in target.model else target.model
        self._url = target.api_base.rstrip("/") + "/chat/completions"
        self._headers = {"Authorization": f"Bearer {target.api_key}"} if target.api_key else {}
        self._session: aiohttp.ClientSession | None = None

    def _http(self) -> aiohttp.ClientSession:
        # Created on first use: a session belongs to the running event loop.
        if self._session is None or self._session.closed:
            import aiohttp  # ~130 ms: paid on the first model call, not at start-up

            t = self._target
            self._session = aiohttp.ClientSession(
                headers=self._headers,
                timeout=aiohttp.ClientTimeout(total=t.timeout_s, connect=min(10.0, t.timeout_s)),
                connector=aiohttp.TCPConnector(limit=64),
            )
        return self._session

    @property
    def model(self) -> str:
        return self._target.model

    async def aclose(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None

    async def complete(self, request: LLMRequest, on_delta: DeltaSink | None = None) -> LLMResponse:
        t = self._target
        body: dict[str, Any] = {"model": self._wire_model, "messages": list(request.messages)}
        if request.tools:
            body["tools"] = list(request.tools)
        if t.max_tokens is not None:
            body["max_tokens"] = t.max_tokens
        if t.temperature is not None:
            body["temperature"] = t.temperature
        stream = self._stream and on_delta is not None
        if stream:
            body["stream"] = True
            body["stream_options"] = {"include_usage": True}
        started = time.perf_counter()
        http = self._http()
        from aiohttp import ClientError  # loaded by _http() already

        try:
            async with http.post(self._url, data=wire_json.dumps(body), headers=_JSON) as resp:
                await _check(resp, t.model)
                if stream:
                    content, calls, usage = await _collect(_lines(resp), on_delta)
                else:
                    content, calls, usage = _read(await resp.json(content_type=None))
        except LLMError:
            raise
        except (TimeoutError, ClientError) as exc:
            raise unreachable(t.model) from exc
        except (ValueError, KeyError, IndexError, TypeError) as exc:
            raise ProviderUnavailable(
                f"the model provider for {t.model} sent a malformed answer", model=t.model
            ) from exc
        tokens_in, tokens_out = usage.get("prompt_tokens", 0), usage.get("completion_tokens", 0)
        return LLMResponse(
            content=content,
            model=t.model,
            tool_calls=calls,
            usage=Usage(tokens_in, tokens_out, self._prices.cost(t.model, tokens_in, tokens_out)),
            latency_s=time.perf_counter() - started,
        )


async def _lines(resp: aiohttp.ClientResponse) -> AsyncIterator[str]:
    async for raw in resp.content:
        yield raw.decode("utf-8", "replace").rstrip("\r\n")


async def _check(resp: aiohttp.ClientResponse, model: str) -> None:
    if resp.status >= 400:
        await resp.read()
        raise for_status(resp.status, model)


def _usage(raw: Any) -> dict[str, int]:
    if not isinstance(raw, dict):
        return {}
    return {k: int(raw.get(k) or 0) for k in ("prompt_tokens", "completion_tokens")}


def _read(data: dict[str, Any]) -> tuple[str, tuple[ToolCall, ...], dict[str, int]]:
    message = data["choices"][0]["message"]
    calls = tuple(
        ToolCall(
            c.get("id") or f"call_{i}",
            c["function"]["name"],
            c["function"].get("arguments") or "{}",
        )
        for i, c in enumerate(message.get("tool_calls") or ())
    )
    return message.get("content") or "", calls, _usage(data.get("usage"))


async def _collect(
    lines: AsyncIterator[str], on_delta: DeltaSink | None
) -> tuple[str, tuple[ToolCall, ...], dict[str, int]]:
    parts: list[str] = []
    calls: dict[int, dict[str, str]] = {}
    usage: dict[str, int] = {}
    async for line in lines:
        if not line.startswith("data:"):
            continue
        payload = line[5:].strip()
        if payload == "[DONE]":
            break
        chunk = wire_json.loads(payload)
        if chunk.get("usage"):
            usage = _usage(chunk["usage"])
        for choice in chunk.get("choices") or ():
            delta = choice.get("delta") or {}
            if text := delta.get("content"):
                parts.append(text)
                if on_delta is not None:
                    await on_delta(text)
            for tc in delta.get("tool_calls") or ():
                slot = calls.setdefault(
                    int(tc.get("index") or 0), {"id": "", "name": "", "arguments": ""}
                )
                slot["id"] = tc.get("id") or slot["id"]
                function = tc.get("function") or {}
                slot["name"] = function.get("name") or slot["name"]
                slot["arguments"] += function.get("arguments") or ""
    tool_calls = tuple(
        ToolCall(c["id"] or f"call_{i}", c["name"], c["arguments"] or "{}")
        for i, c in sorted(calls.items())
    )
    return "".join(parts), tool_calls, usage
