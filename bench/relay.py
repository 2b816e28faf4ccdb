"""The floor for "HTTP + JSON in Python": a chat relay in one aiohttp file, no storage.

``POST /api/v1/chat {"message", "session"?}`` keeps each session's history in a dict,
streams the model's answer from an OpenAI-compatible server and answers
``{"session", "reply"}`` with the same ``Server-Timing`` header as Nexflow, so
``gateway_bench.py`` drives both the same way. ``GET /health`` answers ``ok``. The
history and the model call are ``relay_common.Relay``, shared with ``relay_fastapi.py``.

    python bench/relay.py --port 8090 --llm http://127.0.0.1:9000/v1
"""

from __future__ import annotations

from aiohttp import ClientSession, web
from relay_common import Relay, arguments


def make_app(llm_base: str) -> web.Application:
    relay = Relay(llm_base)
    app = web.Application()

    async def session_ctx(app: web.Application):  # type: ignore[no-untyped-def]
        app["http"] = ClientSession()
        yield
        await app["http"].close()

    async def chat(request: web.Request) -> web.Response:
        body = await request.json()
        sid, reply, timing = await relay.chat(
            app["http"], str(body["message"]), body.get("session")
        )
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
    args = arguments(__doc__)
    web.run_app(make_app(args.llm), host="127.0.0.1", port=args.port, print=None)
