"""The floor for the stack Nexflow's web edge is built on: the relay of ``relay.py`` in
FastAPI and uvicorn (SPEC: "OpenAPI schema served by FastAPI").

The same two routes and the same behaviour as ``relay.py``: ``POST /api/v1/chat``
(a pydantic request and response model, as Nexflow's routes have) keeps each session's
history in a dict and streams the model's answer; ``GET /health`` answers ``ok``. The
HTTP client (aiohttp's, as the relay's) is imported on the first chat request, so the
cold start and the idle RSS are FastAPI's and uvicorn's alone; the history and the model
call are ``relay_common.Relay``, as the relay's.

    python bench/relay_fastapi.py --port 8091 --llm http://127.0.0.1:9000/v1
"""

from __future__ import annotations

from typing import Any

import uvicorn
from fastapi import FastAPI, Response
from fastapi.responses import PlainTextResponse
from pydantic import BaseModel
from relay_common import Relay, arguments


class ChatIn(BaseModel):
    message: str
    session: str | None = None


class ChatOut(BaseModel):
    session: str
    reply: str


def make_app(llm_base: str) -> FastAPI:
    relay = Relay(llm_base)
    client: list[Any] = []  # the aiohttp session, made on the first message
    app = FastAPI()

    @app.post("/api/v1/chat")
    async def chat(body: ChatIn, response: Response) -> ChatOut:
        if not client:
            from aiohttp import ClientSession

            client.append(ClientSession())
        sid, reply, timing = await relay.chat(client[0], body.message, body.session)
        response.headers["Server-Timing"] = timing
        return ChatOut(session=sid, reply=reply)

    @app.get("/health", response_class=PlainTextResponse)
    async def health() -> str:
        return "ok"

    return app


if __name__ == "__main__":
    args = arguments(__doc__)
    uvicorn.run(
        make_app(args.llm), host="127.0.0.1", port=args.port, log_level="warning", access_log=False
    )
