"""``/mcp`` without paying for the MCP SDK at start-up.

Importing ``mcp`` costs about a second and 27 MB, so :class:`LazyMCPEndpoint` imports
and starts :class:`~nexflow.panels.runtime.mcp_server.PanelMCPServer` on the first
request. The server's transport runs in one owned task (entered and exited there, as
anyio requires); :meth:`stop` ends it.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable, MutableMapping, Sequence
from typing import TYPE_CHECKING, Any

from nexflow.tools.base import Tool

if TYPE_CHECKING:
    from nexflow.panels.runtime.mcp_server import ContextFor, PanelMCPServer
    from nexflow.panels.runtime.service import PanelService

ASGIMessage = MutableMapping[str, Any]


class LazyMCPEndpoint:
    def __init__(
        self,
        service: PanelService,
        *,
        loopback_only: bool,
        extra_tools: Callable[[], Sequence[Tool]] = tuple,
        context_for: ContextFor | None = None,
    ) -> None:
        self._service = service
        self._loopback_only = loopback_only
        self.extra_tools = extra_tools
        self.context_for = context_for
        self._server: PanelMCPServer | None = None
        self._task: asyncio.Task[None] | None = None
        self._ready = asyncio.Event()
        self._stop = asyncio.Event()
        self._lock = asyncio.Lock()

    @property
    def started(self) -> bool:
        return self._server is not None

    async def _ensure(self) -> PanelMCPServer:
        async with self._lock:
            if self._server is None:
                from nexflow.panels.runtime.mcp_server import PanelMCPServer

                server = PanelMCPServer(
                    self._service,
                    loopback_only=self._loopback_only,
                    extra_tools=self.extra_tools,
                    **({"context_for": self.context_for} if self.context_for else {}),
                )
                self._task = asyncio.create_task(self._serve(server), name="nexflow-mcp")
                await self._ready.wait()
                self._server = server
        return self._server

    async def _serve(self, server: PanelMCPServer) -> None:
        await server.start()
        try:
            self._ready.set()
            await self._stop.wait()
        finally:
            await server.stop()

    async def __call__(
        self,
        scope: MutableMapping[str, Any],
        receive: Callable[[], Awaitable[ASGIMessage]],
        send: Callable[[ASGIMessage], Awaitable[None]],
    ) -> None:
        server = await self._ensure()
        await server.asgi(scope, receive, send)

    async def stop(self) -> None:
        self._stop.set()
        if self._task is not None:
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
