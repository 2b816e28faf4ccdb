"""The floor for the stack Nexflow's web edge is built on: the relay of ``relay.py`` in
FastAPI and uvicorn (SPEC: "OpenAPI schema served by FastAPI").

The same two routes and the same behaviour as ``relay.py``: ``POST /api/v1/chat``
(a pydantic request and response model, as Nexflow's routes have) keeps each session's
history in a dict and streams the model's answer; ``GET /health`` answers ``ok``. The
HTTP client (aiohttp's, as the relay's) is imported on the first chat request, so the
cold start and the idle RSS are FastAPI's and uvicorn's alone.

    python bench/relay_fastapi.py --port 8091 --llm http://127.0.0.1:9000/v1
"""

from __future__ import annotations

import argparse
import json
import time
import uuid
from typing import Any

import uvicorn
from fastapi import FastAPI, Response
from fastapi.responses import PlainTextResponse
from pydantic import BaseModel


class ChatIn(BaseModel):
    message: str
    session: str | None = None


class ChatOut(BaseModel):
    session: str
    reply: str


def make_app(llm_base: str) -> FastAPI:
    history: dict[str, list[dict[str, str]]] = {}
    client: list[Any] = []  # the aiohttp session, made on the first message
    app = FastAPI()

    @app.post("/api/v1/chat")
    async def chat(body: ChatIn, response: Response) -> ChatOut:
        started = time.perf_counter()
        if not client:
            from aiohttp import ClientSession

            client.append(ClientSession())
        sid = body.session or uuid.uuid4().hex
        messages = history.setdefault(sid, [{"role": "system", "content": "You are a relay."}])
        messages.append({"role": "user", "content": body.message})
        call = {"model": "fake", "messages": messages[-40:], "stream": True}
        parts: list[str] = []
        llm_started = time.perf_counter()
        async with client[0].post(f"{llm_base}/chat/completions", json=call) as resp:
            async for line in resp.content:
                if line.startswith(b"data: {"):
                    for choice in json.loads(line[6:]).get("choices") or ():
                        parts.append(choice.get("delta", {}).get("content") or "")
        llm_ms = (time.perf_counter() - llm_started) * 1000
        reply = "".join(parts)
        messages.append({"role": "assistant", "content": reply})
        total_ms = (time.perf_counter() - started) * 1000
        response.headers["Server-Timing"] = f"llm;dur={llm_ms:.3f}, total;dur={total_ms:.3f}"
        return ChatOut(session=sid, reply=reply)

    @app.get("/health", response_class=PlainTextResponse)
    async def health() -> str:
        return "ok"

    return app


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--llm", required=True, help="the model server's /v1 base URL")
    args = parser.parse_args()
    uvicorn.run(
        make_app(args.llm), host="127.0.0.1", port=args.port, log_level="warning", access_log=False
    )
