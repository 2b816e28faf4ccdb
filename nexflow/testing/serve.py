"""Serving a fake on loopback: one place that starts an aiohttp app and finds its port."""

from __future__ import annotations

from typing import Any

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
