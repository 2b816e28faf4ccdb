"""The floor for "HTTP + JSON in Python": a chat relay in one aiohttp file, no storage.

``POST /api/v1/chat {"message", "session"?}`` keeps each session's history in a dict,
streams the model's answer from an OpenAI-compatible server and answers
``{"session", "reply"}`` with the same ``Server-Timing`` header as Nexflow, so
``gateway_bench.py`` drives both the same way. ``GET /health`` answers ``ok``.

    python bench/relay.py --port 8090 --llm http://127.0.0.1:9000/v1
"""

from __future__ import annotations

import argparse
import json
import time
import uuid

from aiohttp import ClientSession, web


def make_app(llm_base: str) -> web.Application:
    history: dict[str, list[dict[str, str]]] = {}
    app = web.Application()

    async def session_ctx(app: web.Application):  # type: ignore[no-untyped-def]
        app["http"] = ClientSession()
        yield
        await app["http"].close()

    async def chat(request: web.Request) -> web.Response:
        started = time.perf_counter()
        body = await request.json()
        sid = body.get("session") or uuid.uuid4().hex
        messages = history.setdefault(sid, [{"role": "system", "content": "You are a relay."}])
        messages.append({"role": "user", "content": str(body["message"])})
        call = {"model": "fake", "messages": messages[-40:], "stream": True}
        parts: list[str] = []
        llm_started = time.perf_counter()
        async with app["http"].post(f"{llm_base}/chat/completions", json=call) as resp:
            async for line in resp.content:
                if line.startswith(b"data: {"):
                    for choice in json.loads(line[6:]).get("choices") or ():
                        parts.append(choice.get("delta", {}).get("content") or "")
        llm_ms = (time.perf_counter() - llm_started) * 1000
        reply = "".join(parts)
        messages.append({"role": "assistant", "content": reply})
        total_ms = (time.perf_counter() - started) * 1000
        timing = f"llm;dur={llm_ms:.3f}, total;dur={total_ms:.3f}"
        return web.json_response(
            {"session": sid, "reply": reply}, headers={"Server-Timing": timing}
        )

    async def health(_: web.Request) -> web.Response:
        return web.Response(text="ok")

    app.cleanup_ctx.append(session_ctx)
    app.router.add_post("/api/v1/chat", chat)
    app.router.add_get("/health", health)
    return app


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--llm", required=True, help="the model server's /v1 base URL")
    args = parser.parse_args()
    web.run_app(make_app(args.llm), host="127.0.0.1", port=args.port, print=None)
