"""A scripted OpenAI-compatible chat-completions server on loopback.

Real HTTP (aiohttp), streaming (SSE) and non-streaming, tool calls, errors and
delays. Tests push :class:`Reply` values or pass a ``brain`` function; without
either, :func:`default_brain` answers: it calls ``get_time`` when asked about the
time and the tool is offered, reports a tool's result, and otherwise echoes.

``POST /v1/embeddings`` answers with :func:`fake_embedding`: a deterministic hashed
bag-of-words vector. It is a test fake, not a semantic model: texts that share words
(after crude stemming) are close, paraphrases with different words are not.

Run standalone for benchmarks and process-level tests::

    python -m nexflow.testing.fake_llm --port 0 --latency-ms 0
    # prints "listening on http://127.0.0.1:PORT/v1"
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import json
import math
import re
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

from nexflow.testing.serve import ScriptedServer, serve_forever


@dataclass(frozen=True)
class Reply:
    """One scripted answer. ``status`` other than 200 answers with that HTTP error."""

    text: str = ""
    tool_calls: tuple[tuple[str, dict[str, Any] | str], ...] = ()  # str: raw arguments
    status: int = 200
    delay_s: float = 0.0


Brain = Callable[[dict[str, Any]], Reply]


def _last(messages: list[dict[str, Any]], role: str) -> dict[str, Any] | None:
    return next((m for m in reversed(messages) if m.get("role") == role), None)


def callable_tools(request: dict[str, Any]) -> set[str]:
    """Tools the model may call: those offered with a schema, and those ``load_tools``
    names (a deferred tool can be called by name; loading only shows its arguments)."""
    names: set[str] = set()
    for tool in request.get("tools") or []:
        function = tool["function"]
        names.add(function["name"])
        if function["name"] == "load_tools":
            names.update(re.findall(r"[\w-]+(?= \(|;|\.$)", function.get("description", "")))
    return names


def default_brain(request: dict[str, Any]) -> Reply:
    messages: list[dict[str, Any]] = request.get("messages", [])
    last = messages[-1] if messages else {}
    if last.get("role") == "tool":
        return Reply(text=f"The tool {last.get('name') or 'call'} returned: {last.get('content')}")
    user = _last(messages, "user") or {}
    content = str(user.get("content") or "")
    if "time" in content.lower() and "get_time" in callable_tools(request):
        return Reply(tool_calls=(("get_time", {}),))
    return Reply(text=f"Echo: {content}")


@dataclass(kw_only=True)
class FakeLLMServer(ScriptedServer[Reply]):
    """Start with :meth:`start`; ``base_url`` is what litellm's ``api_base`` should be."""

    brain: Brain = default_brain
    latency_s: float = 0.0
    embedding_requests: list[dict[str, Any]] = field(default_factory=list)
    authorizations: list[str] = field(default_factory=list)  # each chat call's header

    @property
    def base_url(self) -> str:
        return f"http://{self.host}:{self.port}/v1"

    def routes(self, app: web.Application) -> None:
        app.router.add_post("/v1/chat/completions", self._chat)
        app.router.add_get("/v1/models", self._models)
        app.router.add_post("/v1/embeddings", self._embeddings)

    async def _models(self, _: web.Request) -> web.Response:
        return web.json_response({"object": "list", "data": [{"id": "fake", "object": "model"}]})

    async def _embeddings(self, request: web.Request) -> web.Response:
        body = await request.json()
        self.embedding_requests.append(body)
        texts = body.get("input")
        texts = [texts] if isinstance(texts, str) else list(texts or [])
        dims = int(body.get("dimensions") or FAKE_EMBEDDING_DIMENSIONS)
        data = [
            {"object": "embedding", "index": i, "embedding": fake_embedding(str(t), dims)}
            for i, t in enumerate(texts)
        ]
        tokens = sum(len(str(t)) // 4 + 1 for t in texts)
        return web.json_response(
            {
                "object": "list",
                "data": data,
                "model": str(body.get("model", "fake-embedding")),
                "usage": {"prompt_tokens": tokens, "total_tokens": tokens},
            }
        )

    async def _chat(self, request: web.Request) -> web.StreamResponse:
        body = await request.json()
        self.requests.append(body)
        self.authorizations.append(request.headers.get("Authorization", ""))
        reply = self.next_reply(body)
        delay = reply.delay_s + self.latency_s
        if delay:
            await asyncio.sleep(delay)
        if reply.status != 200:
            return web.json_response(
                {"error": {"message": f"scripted failure {reply.status}", "type": "server_error"}},
                status=reply.status,
            )
        usage = _usage(body, reply)
        model = str(body.get("model", "fake"))
        if body.get("stream"):
            return await self._stream(request, body, reply, usage, model)
        message: dict[str, Any] = {"role": "assistant", "content": reply.text or None}
        if reply.tool_calls:
            message["tool_calls"] = [
                {
                    "id": _call_id(),
                    "type": "function",
                    "function": {"name": n, "arguments": _args(a)},
                }
                for n, a in reply.tool_calls
            ]
        return web.json_response(
            {
                "id": f"chatcmpl-{uuid.uuid4().hex[:12]}",
                "object": "chat.completion",
                "created": int(time.time()),
                "model": model,
                "choices": [
                    {
                        "index": 0,
                        "message": message,
                        "finish_reason": "tool_calls" if reply.tool_calls else "stop",
                    }
                ],
                "usage": usage,
            }
        )

    async def _stream(
        self,
        request: web.Request,
        body: dict[str, Any],
        reply: Reply,
        usage: dict[str, int],
        model: str,
    ) -> web.StreamResponse:
        resp = web.StreamResponse(headers={"Content-Type": "text/event-stream"})
        await resp.prepare(request)
        cid = f"chatcmpl-{uuid.uuid4().hex[:12]}"

        async def send(delta: dict[str, Any], finish: str | None = None) -> None:
            chunk = {
                "id": cid,
                "object": "chat.completion.chunk",
                "created": int(time.time()),
                "model": model,
                "choices": [{"index": 0, "delta": delta, "finish_reason": finish}],
            }
            await resp.write(f"data: {json.dumps(chunk)}\n\n".encode())

        await send({"role": "assistant", "content": ""})
        for piece in _pieces(reply.text):
            await send({"content": piece})
        for index, (name, args) in enumerate(reply.tool_calls):
            call = {"index": index, "id": _call_id(), "type": "function"}
            await send({"tool_calls": [{**call, "function": {"name": name, "arguments": ""}}]})
            await send({"tool_calls": [{"index": index, "function": {"arguments": _args(args)}}]})
        await send({}, "tool_calls" if reply.tool_calls else "stop")
        if (body.get("stream_options") or {}).get("include_usage"):
            tail = {
                "id": cid,
                "object": "chat.completion.chunk",
                "created": int(time.time()),
                "model": model,
                "choices": [],
                "usage": usage,
            }
            await resp.write(f"data: {json.dumps(tail)}\n\n".encode())
        await resp.write(b"data: [DONE]\n\n")
        await resp.write_eof()
        return resp


FAKE_EMBEDDING_DIMENSIONS = 256
_WORD = re.compile(r"\w+")


def fake_embedding(text: str, dims: int = FAKE_EMBEDDING_DIMENSIONS) -> list[float]:
    """A unit vector: each word (lower-cased, cut to its first 5 letters) hashed to a slot.

    Deterministic across processes (blake2b, not ``hash``). Only a weak stand-in for a real
    embedding model: it matches shared word stems, it knows no synonyms.
    """
    vector = [0.0] * dims
    for word in _WORD.findall(text.lower()):
        digest = hashlib.blake2b(word[:5].encode(), digest_size=8).digest()
        slot = int.from_bytes(digest[:4], "little") % dims
        vector[slot] += 1.0 if digest[4] & 1 else -1.0
    norm = math.sqrt(sum(v * v for v in vector)) or 1.0
    return [v / norm for v in vector]


def _args(args: dict[str, Any] | str) -> str:
    return args if isinstance(args, str) else json.dumps(args)


def _pieces(text: str, size: int = 16) -> list[str]:
    return [text[i : i + size] for i in range(0, len(text), size)]


def _call_id() -> str:
    return f"call_{uuid.uuid4().hex[:16]}"


def _usage(body: dict[str, Any], reply: Reply) -> dict[str, int]:
    prompt_chars = len(json.dumps(body.get("messages", []))) + len(
        json.dumps(body.get("tools") or [])
    )
    completion_chars = len(reply.text) + sum(len(_args(a)) + len(n) for n, a in reply.tool_calls)
    prompt, completion = max(1, prompt_chars // 4), max(1, completion_chars // 4)
    return {
        "prompt_tokens": prompt,
        "completion_tokens": completion,
        "total_tokens": prompt + completion,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description="Scripted OpenAI-compatible server for tests")
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--latency-ms", type=float, default=0.0)
    args = parser.parse_args()
    serve_forever(FakeLLMServer(latency_s=args.latency_ms / 1000, port=args.port))


if __name__ == "__main__":
    main()
