"""Panel tools over the Model Context Protocol (streamable HTTP at ``/mcp``).

``tools/list`` lists the caller's own panel tools under the same provider-safe names
the gateway's model sees (``owner__main__server-monitor__filter_logs``): the request is
authenticated like the rest of the API, and ``context_for`` turns it into the caller's
:class:`~nexflow.tools.base.ToolContext` (another user's panels are neither listed nor
callable);
``tools/call`` runs it as ``triggered_by="ai"`` and answers the same JSON as
``POST /api/v1/panels/{id}/tools/{tool}`` (as text and ``structuredContent``),
with ``isError`` when the call failed. Tools marked ``dangerous`` are refused
(there is nobody to confirm with). The skills tools (``read_skill``, ``run_skill``) are
served beside them; a skill that needs confirmation is refused for the same reason.

The endpoint sits behind the gateway's bearer-token middleware like the rest of
the API. The transport is stateless with JSON responses, so any MCP client
(``mcp.Client("http://127.0.0.1:8080/mcp")``) works without a session. On a
loopback bind, Host/Origin headers are checked against DNS rebinding.
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

import mcp_types as types
from mcp.server.context import ServerRequestContext
from mcp.server.lowlevel.server import Server
from mcp.server.streamable_http_manager import (
    StreamableHTTPASGIApp,
    StreamableHTTPSessionManager,
)
from mcp.server.transport_security import TransportSecuritySettings

from nexflow import __version__
from nexflow.panels.runtime.errors import PanelRuntimeError
from nexflow.panels.runtime.service import PanelService
from nexflow.tools.base import Tool, ToolContext, ToolError

MCP_CONTEXT = ToolContext(user_id="mcp", session_id="mcp", channel="mcp", chat_id="mcp")
ContextFor = Callable[[Any], Awaitable[ToolContext]]  # the HTTP request → the caller


async def _anonymous(_request: Any) -> ToolContext:
    return MCP_CONTEXT


def _loopback_security() -> TransportSecuritySettings:
    return TransportSecuritySettings(
        enable_dns_rebinding_protection=True,
        allowed_hosts=["127.0.0.1:*", "localhost:*", "[::1]:*", "127.0.0.1", "localhost"],
        allowed_origins=["http://127.0.0.1:*", "http://localhost:*", "http://[::1]:*"],
    )


class PanelMCPServer:
    """An MCP server over a :class:`PanelService`; ``asgi`` is mounted at ``/mcp``.

    ``start()``/``stop()`` run the transport's task group; call them from the
    application's start/stop (the same task, as the lifespan does).
    """

    def __init__(
        self,
        service: PanelService,
        *,
        loopback_only: bool = True,
        extra_tools: Callable[[], Sequence[Tool]] = tuple,
        context_for: ContextFor = _anonymous,
    ) -> None:
        self._service = service
        self._extra = extra_tools
        self._context_for = context_for
        self.server: Server[Any] = Server(
            "nexflow-panels",
            version=__version__,
            instructions="Tools of the live Nexflow panels; each changes one panel's state.",
            on_list_tools=self._list_tools,
            on_call_tool=self._call_tool,
        )
        self._manager = StreamableHTTPSessionManager(
            app=self.server,
            json_response=True,
            stateless=True,
            security_settings=_loopback_security() if loopback_only else None,
        )
        self.asgi = StreamableHTTPASGIApp(self._manager)
        self._stack: contextlib.AsyncExitStack | None = None

    async def start(self) -> None:
        stack = contextlib.AsyncExitStack()
        await stack.enter_async_context(self._manager.run())
        self._stack = stack

    async def stop(self) -> None:
        stack, self._stack = self._stack, None
        if stack is not None:
            await stack.aclose()

    def _tools(self, caller: ToolContext) -> list[Tool]:
        return [*self._service.tools_for(caller), *self._extra()]

    async def _list_tools(
        self, ctx: ServerRequestContext[Any], _params: types.PaginatedRequestParams | None
    ) -> types.ListToolsResult:
        caller = await self._context_for(ctx.request)
        return types.ListToolsResult(
            tools=[
                types.Tool(
                    name=t.spec.name,
                    title=getattr(t, "qualified", t.spec.name),
                    description=t.spec.description,
                    input_schema=dict(t.spec.parameters),
                )
                for t in self._tools(caller)
            ]
        )

    async def _call_tool(
        self, ctx: ServerRequestContext[Any], params: types.CallToolRequestParams
    ) -> types.CallToolResult:
        caller = await self._context_for(ctx.request)
        tool = next((t for t in self._tools(caller) if t.spec.name == params.name), None)
        if tool is None:
            return _error(f"there is no tool {params.name!r}; list them with tools/list")
        try:
            result = await tool.run(params.arguments or {}, caller)
        except (ToolError, PanelRuntimeError) as exc:
            return _error(exc.message)
        data = dict(result.data) if result.data is not None else None
        return types.CallToolResult(
            # Failures say why in words; successes carry the full JSON answer.
            content=[
                types.TextContent(
                    text=result.content if result.is_error or not data else json.dumps(data)
                )
            ],
            structured_content=data,
            is_error=result.is_error,
        )


def _error(message: str) -> types.CallToolResult:
    return types.CallToolResult(content=[types.TextContent(text=message)], is_error=True)
