"""A scripted server speaking Ollama's native API on loopback.

Real HTTP (aiohttp) with Ollama's shapes: ``POST /api/chat`` streams NDJSON unless the
body says ``"stream": false`` (Ollama's default is to stream), tool calls carry
JSON-object arguments, the final object has ``done: true``, ``done_reason`` and the
token counts (``prompt_eval_count``, ``eval_count``); ``POST /api/embed`` returns
``embeddings`` (:func:`~nexflow.testing.fake_llm.fake_embedding`, ``dimensions`` wide when
the body asks); ``GET /api/tags`` lists the pulled models; ``GET /api/version``. A model
that is not pulled answers 404 ``model "x" not found, try pulling it first``; tools sent
to a model in ``no_tools`` answer 400 ``... does not support tools``; an assistant
message whose tool-call arguments are not an object answers 400, as Ollama's JSON
decoding does. Like Ollama, a name without a tag means ``:latest``.
tests/llm/test_fake_ollama_official_client.py drives it with the official ``ollama``
package, so these shapes are the ones that client parses.

Tests push :class:`~nexflow.testing.fake_llm.Reply` values or pass a ``brain``; without
either, :func:`ollama_brain` answers like the OpenAI-compatible fake's default brain.

Run standalone::

    python -m nexflow.testing.fake_ollama --port 0
    # prints "listening on http://127.0.0.1:PORT"
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import json
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from aiohttp import web

from nexflow.testing.fake_llm import (
    FAKE_EMBEDDING_DIMENSIONS,
    Reply,
    callable_tools,
    fake_embedding,
)
from nexflow.testing.serve import ScriptedServer, serve_forever

Brain = Callable[[dict[str, Any]], Reply]


def ollama_brain(request: dict[str, Any]) -> Reply:
    """Reports a tool's result, calls ``get_time`` when asked the time, else echoes."""
    messages: list[dict[str, Any]] = request.get("messages") or []
    last = messages[-1] if messages else {}
    if last.get("role") == "tool":
        return Reply(f"The tool {last.get('tool_name') or 'call'} returned: {last.get('content')}")
    user: dict[str, Any] = next((m for m in reversed(messages) if m.get("role") == "user"), {})
    content = str(user.get("content") or "")
    if "time" in content.lower() and "get_time" in callable_tools(request):
        return Reply(tool_calls=(("get_time", {}),))
    return Reply(f"Echo: {content}")


def _tagged(name: str) -> str:
    return name if ":" in name else f"{name}:latest"


def _now() -> str:
    return datetime.now(UTC).isoformat().replace("+00:00", "Z")


@dataclass(kw_only=True)
class FakeOllamaServer(ScriptedServer[Reply]):
    """Start with :meth:`start`; ``base_url`` is what ``llm.ollama.base_url`` should be."""

    models: list[str] = field(default_factory=lambda: ["llama3.2:latest"])
    no_tools: set[str] = field(default_factory=set)
    brain: Brain = ollama_brain
    embed_requests: list[dict[str, Any]] = field(default_factory=list)

    @property
    def base_url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def routes(self, app: web.Application) -> None:
        app.router.add_get("/", self._root)
        app.router.add_get("/api/version", self._version)
        app.router.add_get("/api/tags", self._tags)
        app.router.add_post("/api/chat", self._chat)
        app.router.add_post("/api/embed", self._embed)

    async def _root(self, _: web.Request) -> web.Response:
        return web.Response(text="Ollama is running")

    async def _version(self, _: web.Request) -> web.Response:
        return web.json_response({"version": "0.12.0"})

    async def _tags(self, _: web.Request) -> web.Response:
        return web.json_response(
            {
                "models": [
                    {
                        "name": _tagged(m),
                        "model": _tagged(m),
                        "modified_at": _now(),
                        "size": 2_019_393_189,
                        "digest": hashlib.sha256(m.encode()).hexdigest(),
                        "details": {"format": "gguf", "family": "llama"},
                    }
                    for m in self.models
                ]
            }
        )

    def _missing(self, name: object) -> web.Response | None:
        if not isinstance(name, str) or not name:
            return _error(400, "model is required")
        if _tagged(name) not in {_tagged(m) for m in self.models}:
            return _error(404, f'model "{name}" not found, try pulling it first')
        return None

    async def _embed(self, request: web.Request) -> web.Response:
        body = await request.json()
        self.embed_requests.append(body)
        if (missing := self._missing(body.get("model"))) is not None:
            return missing
        texts = body.get("input")
        texts = [texts] if isinstance(texts, str) else list(texts or [])
        dims = body.get("dimensions")
        width = dims if isinstance(dims, int) and dims > 0 else FAKE_EMBEDDING_DIMENSIONS
        return web.json_response(
            {
                "model": body["model"],
                "embeddings": [fake_embedding(str(t), width) for t in texts],
                "total_duration": 14_143_917,
                "load_duration": 1_019_500,
                "prompt_eval_count": sum(len(str(t)) // 4 + 1 for t in texts),
            }
        )

    async def _chat(self, request: web.Request) -> web.StreamResponse:
        try:
            body = await request.json()
        except ValueError:
            return _error(400, "invalid JSON")
        self.requests.append(body)
        name = body.get("model")
        if (missing := self._missing(name)) is not None:
            return missing
        for sent in body.get("messages") or ():
            for call in sent.get("tool_calls") or ():
                if not isinstance((call.get("function") or {}).get("arguments"), dict):
                    return _error(
                        400,
                        "json: cannot unmarshal string into Go struct field .messages"
                        ".tool_calls.function.arguments of type api.ToolCallFunctionArguments",
                    )
        if body.get("tools") and _tagged(str(name)) in {_tagged(m) for m in self.no_tools}:
            return _error(400, f"registry.ollama.ai/library/{name} does not support tools")
        reply = self.next_reply(body)
        if reply.delay_s:
            await asyncio.sleep(reply.delay_s)
        if reply.status != 200:
            return _error(reply.status, f"scripted failure {reply.status}")
        counts = _counts(body, reply)
        if body.get("stream", True):
            return await self._stream(request, str(name), reply, counts)
        message: dict[str, Any] = {"role": "assistant", "content": reply.text}
        if reply.tool_calls:
            message["tool_calls"] = _calls(reply)
        return web.json_response(
            {
                "model": name,
                "created_at": _now(),
                "message": message,
                "done": True,
                "done_reason": "stop",
                **counts,
            }
        )

    async def _stream(
        self, request: web.Request, name: str, reply: Reply, counts: dict[str, int]
    ) -> web.StreamResponse:
        resp = web.StreamResponse(headers={"Content-Type": "application/x-ndjson"})
        await resp.prepare(request)

        async def send(chunk: dict[str, Any]) -> None:
            line = {"model": name, "created_at": _now(), **chunk}
            await resp.write(json.dumps(line).encode() + b"\n")

        for piece in [reply.text[i : i + 8] for i in range(0, len(reply.text), 8)]:
            await send({"message": {"role": "assistant", "content": piece}, "done": False})
        if reply.tool_calls:
            message = {"role": "assistant", "content": "", "tool_calls": _calls(reply)}
            await send({"message": message, "done": False})
        await send(
            {
                "message": {"role": "assistant", "content": ""},
                "done": True,
                "done_reason": "stop",
                **counts,
            }
        )
        await resp.write_eof()
        return resp


def _error(status: int, text: str) -> web.Response:
    return web.json_response({"error": text}, status=status)


def _calls(reply: Reply) -> list[dict[str, Any]]:
    return [
        {
            "function": {
                "index": i,
                "name": n,
                "arguments": json.loads(a) if isinstance(a, str) else a,
            }
        }
        for i, (n, a) in enumerate(reply.tool_calls)
    ]


def _counts(body: dict[str, Any], reply: Reply) -> dict[str, int]:
    prompt = len(json.dumps(body.get("messages") or [])) + len(json.dumps(body.get("tools") or []))
    out = len(reply.text) + sum(len(json.dumps(a)) + len(n) for n, a in reply.tool_calls)
    return {
        "total_duration": 5_191_566_416,
        "load_duration": 2_154_458,
        "prompt_eval_count": max(1, prompt // 4),
        "prompt_eval_duration": 383_809_000,
        "eval_count": max(1, out // 4),
        "eval_duration": 4_799_921_000,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description="Scripted Ollama-API server for tests")
    parser.add_argument("--port", type=int, default=0)
    args = parser.parse_args()
    serve_forever(FakeOllamaServer(port=args.port))


if __name__ == "__main__":
    main()
