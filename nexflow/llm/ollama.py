"""A native client for Ollama's own API (``/api/chat``, ``/api/embed``, ``/api/tags``).

Used for ``ollama/<model>`` profiles and for an Ollama found on the machine. Compared
with Ollama's OpenAI-compatible ``/v1``, the native API takes model ``options`` (e.g.
``num_ctx``, without which Ollama cuts long prompts to its default context), streams
NDJSON, reports tool calls with JSON-object arguments and says plainly when a model is
not pulled. Messages and tools arrive in the OpenAI wire format (the orchestrator's) and
are translated here: assistant tool-call arguments become objects, tool results carry
``tool_name``. Token counts come from ``prompt_eval_count`` / ``eval_count``; a local
model costs nothing.

Embeddings (``POST /api/embed``) go in batches of :data:`EMBED_BATCH` texts; memory's
:class:`~nexflow.memory.ollama_embedder.OllamaEmbedder` uses them for ``ollama/<model>``
embedding profiles.

Errors: connection refused or a timeout → :class:`ProviderUnavailable` (the fallback
chain answers); a model that is not pulled → :class:`ProviderRejected` whose message says
``ollama pull <model>``.

Why not the official ``ollama`` package: ``bench/ollama_bench.py`` (docs/benchmarks.md,
"Ollama client") ran this client and ``ollama.AsyncClient`` 0.6.3, alternating, against
the fake Ollama server (two runs, medians of 1,000 calls each): a streamed chat of 50
chunks cost 1.3 ms more CPU time per call with the package (+1.26 and +1.31 ms; wall
+1.1 and +1.0 ms), over the 1 ms per call it was allowed, and the gap grows with the
answer (200 chunks: +3.1 ms CPU, +6.2 ms wall; Ollama streams about a token a chunk).
A non-streamed chat cost +0.8-0.9 ms CPU, a streamed tool call +0.9 ms, a 64-text
embed batch +0.6-0.9 ms. Its ``Tool`` model also drops from a tool's schema what it
does not declare (nested ``properties`` and ``required``, ``anyOf``, ``default``,
``minimum``...), which schemas from MCP servers carry. The fake server is checked
against the package itself (tests/llm/test_fake_ollama_official_client.py).
"""

from __future__ import annotations

import json
import time
from collections.abc import AsyncIterator, Sequence
from typing import TYPE_CHECKING, Any

import structlog

if TYPE_CHECKING:
    import aiohttp

from nexflow.llm.client import DeltaSink, LLMRequest, LLMResponse, ToolCall, Usage
from nexflow.llm.errors import LLMError, ProviderRejected, ProviderUnavailable, for_status

log = structlog.get_logger("nexflow.llm")

DEFAULT_BASE_URL = "http://127.0.0.1:11434"
EMBED_BATCH = 64  # texts per /api/embed request


def wire_name(model: str) -> str:
    """``ollama/llama3.2`` → ``llama3.2`` (also ``ollama_chat/``, litellm's spelling)."""
    for prefix in ("ollama/", "ollama_chat/"):
        if model.startswith(prefix):
            return model[len(prefix) :]
    return model


def native_base(api_base: str | None) -> str:
    """The server root: an ``api_base`` written for the OpenAI-compatible path ends in /v1."""
    base = (api_base or DEFAULT_BASE_URL).rstrip("/")
    return base.removesuffix("/v1")


class OllamaClient:
    """:class:`~nexflow.llm.client.LLMClient` over ``POST /api/chat``, plus embeddings."""

    def __init__(
        self,
        model: str,
        base_url: str | None = None,
        *,
        timeout_s: float = 60.0,
        max_tokens: int | None = None,
        temperature: float | None = None,
        options: dict[str, Any] | None = None,
        stream: bool = True,
    ) -> None:
        self._model = model if "/" in model else f"ollama/{model}"
        self._name = wire_name(self._model)
        self._base = native_base(base_url)
        self._timeout_s = timeout_s
        self._stream = stream
        self._model_options = dict(options or {})  # the profile's own, also for embeddings
        opts = dict(self._model_options)
        if temperature is not None:
            opts.setdefault("temperature", temperature)
        if max_tokens is not None:
            opts.setdefault("num_predict", max_tokens)
        self._options = opts
        self._session: aiohttp.ClientSession | None = None

    @property
    def model(self) -> str:
        return self._model

    @property
    def name(self) -> str:
        """The model's name on the Ollama server (the :class:`Embedder` shape)."""
        return self._name

    def _http(self) -> aiohttp.ClientSession:
        if self._session is None or self._session.closed:
            import aiohttp  # paid on the first model call, not at start-up

            self._session = aiohttp.ClientSession(
                timeout=aiohttp.ClientTimeout(
                    total=self._timeout_s, connect=min(10.0, self._timeout_s)
                ),
                connector=aiohttp.TCPConnector(limit=64),
            )
        return self._session

    async def aclose(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None

    close = aclose  # the Embedder protocol's name

    async def complete(self, request: LLMRequest, on_delta: DeltaSink | None = None) -> LLMResponse:
        stream = self._stream and on_delta is not None
        body: dict[str, Any] = {
            "model": self._name,
            "messages": to_ollama_messages(request.messages),
            "stream": stream,
        }
        if request.tools:
            body["tools"] = list(request.tools)
        if self._options:
            body["options"] = self._options
        started = time.perf_counter()
        async with self._call("/api/chat", body) as resp:
            try:
                if stream:
                    content, calls, final = await _collect(_ndjson(resp), on_delta, self._model)
                else:
                    final = await resp.json(content_type=None)
                    _raise_inline_error(final, self._model)
                    message = final.get("message") or {}
                    content = str(message.get("content") or "")
                    calls = _tool_calls(message.get("tool_calls"), 0)
            except LLMError:
                raise
            except (ValueError, KeyError, TypeError, AttributeError) as exc:
                raise ProviderUnavailable(
                    f"Ollama sent a malformed answer for {self._model}", model=self._model
                ) from exc
        tokens_in = int(final.get("prompt_eval_count") or 0)
        tokens_out = int(final.get("eval_count") or 0)
        return LLMResponse(
            content=content,
            model=self._model,
            tool_calls=calls,
            usage=Usage(tokens_in, tokens_out, 0.0),
            latency_s=time.perf_counter() - started,
        )

    async def embed(
        self,
        texts: Sequence[str],
        *,
        dimensions: int | None = None,
        batch: int = EMBED_BATCH,
    ) -> list[list[float]]:
        """``POST /api/embed``: one vector per text, in order, ``batch`` texts a request.

        ``dimensions`` asks the model for shorter vectors (models that support it).
        """
        size = max(1, batch)
        vectors: list[list[float]] = []
        for start in range(0, len(texts), size):
            vectors += await self._embed_batch(texts[start : start + size], dimensions)
        return vectors

    async def _embed_batch(self, texts: Sequence[str], dimensions: int | None) -> list[list[float]]:
        body: dict[str, Any] = {"model": self._name, "input": list(texts)}
        if dimensions:
            body["dimensions"] = dimensions
        if self._model_options:
            body["options"] = self._model_options
        async with self._call("/api/embed", body) as resp:
            try:
                data = await resp.json(content_type=None)
                vectors = [[float(x) for x in row] for row in data["embeddings"]]
            except (ValueError, KeyError, TypeError) as exc:
                raise ProviderUnavailable(
                    f"Ollama sent malformed embeddings for {self._model}", model=self._model
                ) from exc
        if len(vectors) != len(texts):
            raise ProviderUnavailable(
                f"Ollama returned {len(vectors)} embeddings for {len(texts)} texts",
                model=self._model,
            )
        return vectors

    async def models(self) -> list[str]:
        """The names of the models pulled on the server (``GET /api/tags``)."""
        from aiohttp import ClientError

        try:
            async with self._http().get(f"{self._base}/api/tags") as resp:
                if resp.status >= 400:
                    await resp.read()
                    raise for_status(resp.status, self._model, "Ollama /api/tags")
                data = await resp.json(content_type=None)
        except (TimeoutError, ClientError) as exc:
            raise self._down() from exc
        return [str(m["name"]) for m in data.get("models") or () if m.get("name")]

    def _call(self, path: str, body: dict[str, Any]) -> _Call:
        return _Call(self, path, body)

    def _down(self) -> ProviderUnavailable:
        return ProviderUnavailable(
            f"Ollama at {self._base} is not answering (is `ollama serve` running?)",
            model=self._model,
        )

    async def _error(self, resp: aiohttp.ClientResponse) -> LLMError:
        text = (await resp.text())[:500]
        try:
            detail = str(json.loads(text).get("error") or "")
        except (ValueError, AttributeError):
            detail = text
        log.warning("ollama_error", model=self._model, status=resp.status, error=detail)
        lowered = detail.lower()
        if resp.status == 404 and "not found" in lowered:
            return ProviderRejected(
                f"the model {self._name} is not on the Ollama at {self._base}; "
                f"run `ollama pull {self._name}` there, or pick another model",
                model=self._model,
            )
        if resp.status == 400 and "does not support tools" in lowered:
            return ProviderRejected(
                f"the Ollama model {self._name} cannot call tools; pick a model with tool "
                "support (e.g. llama3.2, qwen2.5) for this route",
                model=self._model,
            )
        return for_status(resp.status, self._model, "Ollama")


class _Call:
    """``async with``: POST ``body``, translate transport and HTTP errors, yield the response."""

    def __init__(self, client: OllamaClient, path: str, body: dict[str, Any]) -> None:
        self._client = client
        self._path = path
        self._body = body
        self._resp: aiohttp.ClientResponse | None = None

    async def __aenter__(self) -> aiohttp.ClientResponse:
        from aiohttp import ClientError

        c = self._client
        try:
            resp = await c._http().post(f"{c._base}{self._path}", json=self._body)
        except (TimeoutError, ClientError) as exc:
            raise c._down() from exc
        self._resp = resp
        if resp.status >= 400:
            error = await c._error(resp)
            resp.release()
            raise error
        return resp

    async def __aexit__(self, exc_type: object, exc: BaseException | None, tb: object) -> None:
        from aiohttp import ClientError

        if self._resp is not None:
            self._resp.release()
        if isinstance(exc, (TimeoutError, ClientError)):
            raise self._client._down() from exc


def to_ollama_messages(messages: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    """OpenAI chat messages → Ollama's: object arguments, ``tool_name`` on tool results."""
    names: dict[str, str] = {}
    out: list[dict[str, Any]] = []
    for message in messages:
        role = message.get("role")
        item: dict[str, Any] = {"role": role, "content": _text(message.get("content"))}
        if role == "assistant" and message.get("tool_calls"):
            calls = []
            for call in message["tool_calls"]:
                function = call.get("function") or {}
                names[str(call.get("id") or "")] = str(function.get("name") or "")
                calls.append(
                    {
                        "function": {
                            "name": function.get("name"),
                            "arguments": _arguments(function.get("arguments")),
                        }
                    }
                )
            item["tool_calls"] = calls
        if role == "tool":
            name = message.get("name") or names.get(str(message.get("tool_call_id") or ""))
            if name:
                item["tool_name"] = name
        if message.get("images"):
            item["images"] = message["images"]
        out.append(item)
    return out


def _text(content: Any) -> str:
    if content is None:
        return ""
    if isinstance(content, str):
        return content
    if isinstance(content, list):  # OpenAI content parts: keep the text ones
        return "".join(
            str(p.get("text") or "") for p in content if isinstance(p, dict) and "text" in p
        )
    return str(content)


def _arguments(raw: Any) -> dict[str, Any]:
    if isinstance(raw, dict):
        return raw
    try:
        parsed = json.loads(raw or "{}")
    except (TypeError, ValueError):
        return {}
    return parsed if isinstance(parsed, dict) else {}


def _tool_calls(raw: Any, first_index: int) -> tuple[ToolCall, ...]:
    calls = []
    for offset, call in enumerate(raw or ()):
        function = call.get("function") or {}
        arguments = function.get("arguments")
        text = arguments if isinstance(arguments, str) else json.dumps(arguments or {})
        index = first_index + offset
        calls.append(ToolCall(str(call.get("id") or f"call_{index}"), function["name"], text))
    return tuple(calls)


def _raise_inline_error(chunk: dict[str, Any], model: str) -> None:
    if chunk.get("error"):
        log.warning("ollama_error", model=model, error=str(chunk["error"])[:500])
        raise ProviderUnavailable(f"Ollama failed while answering for {model}", model=model)


async def _ndjson(resp: aiohttp.ClientResponse) -> AsyncIterator[dict[str, Any]]:
    async for raw in resp.content:
        line = raw.strip()
        if line:
            chunk = json.loads(line)
            if not isinstance(chunk, dict):
                raise TypeError("an NDJSON line is not an object")
            yield chunk


async def _collect(
    chunks: AsyncIterator[dict[str, Any]], on_delta: DeltaSink | None, model: str
) -> tuple[str, tuple[ToolCall, ...], dict[str, Any]]:
    parts: list[str] = []
    calls: list[ToolCall] = []
    async for chunk in chunks:
        _raise_inline_error(chunk, model)
        message = chunk.get("message") or {}
        if text := message.get("content"):
            parts.append(text)
            if on_delta is not None:
                await on_delta(text)
        calls.extend(_tool_calls(message.get("tool_calls"), len(calls)))
        if chunk.get("done"):
            return "".join(parts), tuple(calls), chunk
    raise ValueError("the stream ended before its final object")
