"""Serving a fake on loopback: one place that starts an aiohttp app and finds its port,
and the scripted base of the fake model servers (OpenAI-compatible, Ollama)."""

from __future__ import annotations

import asyncio
import contextlib
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar

from aiohttp import web


async def serve(
    app: web.Application, host: str, port: int, **runner: Any
) -> tuple[web.AppRunner, int]:
    """Start ``app`` on ``host:port`` (0: any free port); return the runner and the port."""
    app_runner = web.AppRunner(app, access_log=None, **runner)
    await app_runner.setup()
    site = web.TCPSite(app_runner, host, port)
    await site.start()
    server = site._server
    assert server is not None
    return app_runner, int(server.sockets[0].getsockname()[1])  # type: ignore[attr-defined]


R = TypeVar("R")


@dataclass(kw_only=True)
class ScriptedServer(Generic[R]):
    """A fake model server on loopback. Replies pushed with :meth:`push` answer first, in
    order; then ``brain(request body)`` does. A subclass adds its routes in :meth:`routes`,
    says where it lives in :attr:`base_url`, and takes each answer from :meth:`next_reply`.
    """

    brain: Callable[[dict[str, Any]], R]
    host: str = "127.0.0.1"
    port: int = 0
    requests: list[dict[str, Any]] = field(default_factory=list)
    _script: deque[R] = field(default_factory=deque)
    _runner: web.AppRunner | None = None

    def push(self, *replies: R) -> None:
        self._script.extend(replies)

    def next_reply(self, body: dict[str, Any]) -> R:
        return self._script.popleft() if self._script else self.brain(body)

    @property
    def base_url(self) -> str:
        raise NotImplementedError

    def routes(self, app: web.Application) -> None:
        raise NotImplementedError

    async def start(self) -> str:
        app = web.Application(client_max_size=64 * 1024 * 1024)
        self.routes(app)
        self._runner, self.port = await serve(app, self.host, self.port)
        return self.base_url

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None


def serve_forever(server: ScriptedServer[Any]) -> None:
    """Run ``server`` until interrupted, printing where it listens (``python -m`` use)."""

    async def run() -> None:
        url = await server.start()
        print(f"listening on {url}", flush=True)
        try:
            await asyncio.Event().wait()
        finally:
            await server.stop()

    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(run())
