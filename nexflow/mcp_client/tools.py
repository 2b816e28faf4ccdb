"""The model's side of MCP: ``mcp_tools``, ``mcp_call`` and ``<server>__<tool>``.

Progressive disclosure, like skills: the description of ``mcp_tools`` (the caller's own
instance) lists the caller's servers, one short entry each (:meth:`McpServers.listing`);
``mcp_tools(server)`` returns a server's tools with their input schemas; a tool is then
called by its own name, ``<server>__<tool>`` (resolved on demand by
:class:`McpToolProvider`, never listed among the turn's function definitions), or
through ``mcp_call(server, tool, arguments)``, which every provider accepts because it is
declared. docs/mcp.md says why.

Each call checks the caller against the server's ``allow`` list again, starts the server
if needed, asks the user first when the tool is destructive (``destructiveHint``, true
unless the server says otherwise), and answers with the tool's text; its effects for the
trust gate come from :func:`nexflow.trust.effects.mcp_effects`. Failures reach the model
as :class:`~nexflow.tools.base.ToolError` messages, never as tracebacks.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from nexflow.mcp_client.errors import McpClientError
from nexflow.mcp_client.listing import McpToolInfo, model_name, render, split_name
from nexflow.mcp_client.manager import McpServers
from nexflow.tools.base import Effect, Tool, ToolContext, ToolError, ToolResult, ToolSpec
from nexflow.trust.effects import Effects, mcp_effects
from nexflow.trust.gate import describe

LIST_CHARS = 7_000  # what mcp_tools returns, at most (the turn cuts tool output anyway)


def _effects(servers: McpServers, server: str, tool: str) -> Effects:
    """The call's effects from the tool's last known annotations; unknown: worst case."""
    info: McpToolInfo | None = None
    for handle in servers:
        if handle.name == server:
            info = handle.known(tool)
    return mcp_effects(
        model_name(server, tool),
        read_only=info.read_only if info else None,
        open_world=info.open_world if info else None,
    )


def _spec_effects(effects: Effects) -> frozenset[Effect]:
    return frozenset(effects.kinds)


async def run_mcp_tool(
    servers: McpServers, server: str, tool: str, args: Mapping[str, Any], ctx: ToolContext
) -> ToolResult:
    """Run ``server``'s ``tool`` for ``ctx``: allowed? started, confirmed, called."""
    try:
        handle = servers.handle_for(server, ctx)
        info = await handle.tool(tool)
        label = info.model_name
        if info.destructive:
            if ctx.confirm is None:
                return ToolResult(
                    f"{label} was not run: it may change or delete things and this channel "
                    "cannot ask the user to confirm.",
                    is_error=True,
                    data={"mcp": "cannot_ask"},
                )
            detail = describe(label, args)
            if info.description:
                detail = f"{info.description[:300]}\n\n{detail}"
            if not await ctx.confirm(f"Run {label}?", detail):
                return ToolResult(
                    f"The user declined {label}; it did not run. Do not retry it.",
                    is_error=True,
                    data={"mcp": "declined"},
                )
        result = await handle.call(info.name, args, idempotency_key=ctx.idempotency_key)
    except McpClientError as exc:
        raise ToolError(exc.message) from exc
    return ToolResult(
        render(result),
        is_error=result.is_error,
        data={"server": server, "tool": info.name},
        untrusted=info.open_world is not False,
    )


class McpServerTool:
    """``<server>__<tool>``: one server's tool, called by its own name."""

    def __init__(self, servers: McpServers, server: str, tool: str) -> None:
        self._servers = servers
        self._server = server
        self._tool = tool

    @property
    def spec(self) -> ToolSpec:
        effects = self.effects_for({})
        info = next((h.known(self._tool) for h in self._servers if h.name == self._server), None)
        return ToolSpec(
            name=model_name(self._server, self._tool),
            description=info.description
            if info
            else f"Tool {self._tool} of MCP server {self._server}",
            parameters=dict(info.input_schema) if info else {"type": "object"},
            effects=_spec_effects(effects),
            untrusted_output=effects.untrusted_output,
        )

    def effects_for(self, args: Mapping[str, Any]) -> Effects:
        return _effects(self._servers, self._server, self._tool)

    async def run(self, args: Mapping[str, Any], ctx: ToolContext) -> ToolResult:
        return await run_mcp_tool(self._servers, self._server, self._tool, args, ctx)


class McpCallTool:
    """``mcp_call(server, tool, arguments)``: any of the caller's MCP tools, by name."""

    spec = ToolSpec(
        name="mcp_call",
        description="Call an MCP server's tool.",
        parameters={
            "type": "object",
            "properties": {
                "server": {"type": "string"},
                "tool": {"type": "string"},
                "arguments": {"type": "object"},
            },
            "required": ["server", "tool"],
        },
        effects=frozenset({"write", "egress"}),  # the worst case; effects_for knows better
        untrusted_output=True,
    )

    def __init__(self, servers: McpServers) -> None:
        self._servers = servers

    def effects_for(self, args: Mapping[str, Any]) -> Effects:
        server, tool = _target(args)
        return _effects(self._servers, server, tool)

    async def run(self, args: Mapping[str, Any], ctx: ToolContext) -> ToolResult:
        server, tool = _target(args)
        if not server or not tool:
            raise ToolError("mcp_call needs server and tool (and arguments, an object)")
        arguments = args.get("arguments") or {}
        if not isinstance(arguments, Mapping):
            raise ToolError("mcp_call: arguments must be a JSON object")
        return await run_mcp_tool(self._servers, server, tool, arguments, ctx)


class McpToolsTool:
    """``mcp_tools(server, tool?)``: a server's tools with their input schemas (starts it).

    When the whole listing would be longer than ``LIST_CHARS`` it comes without schemas,
    and ``mcp_tools(server, tool)`` gives one tool's."""

    def __init__(self, servers: McpServers, listing: str = "") -> None:
        self._servers = servers
        self.spec = ToolSpec(
            name="mcp_tools",
            description=(
                "An MCP server's tools with arguments (tool: one only); call as "
                "<server>__<tool> or mcp_call. Servers: " + (listing or "none")
            ),
            parameters={
                "type": "object",
                "properties": {"server": {"type": "string"}, "tool": {"type": "string"}},
                "required": ["server"],
            },
        )

    async def run(self, args: Mapping[str, Any], ctx: ToolContext) -> ToolResult:
        name, only = _target(args)
        try:
            handle = self._servers.handle_for(name, ctx)
            tools = (await handle.tool(only),) if only else await handle.list_tools()
        except McpClientError as exc:
            raise ToolError(exc.message) from exc
        listing = [t.summary() for t in tools]
        text = json.dumps(listing, ensure_ascii=False, separators=(",", ":"))
        if len(text) > LIST_CHARS:
            brief = [{k: v for k, v in t.items() if k != "input_schema"} for t in listing]
            text = (
                json.dumps(brief, ensure_ascii=False, separators=(",", ":"))[:LIST_CHARS]
                + f"\n(Arguments left out: call mcp_tools(server={name!r}, tool=...) for one.)"
            )
        return ToolResult(text, data={"server": name, "tools": [t.name for t in tools]})


def _target(args: Mapping[str, Any]) -> tuple[str, str]:
    return str(args.get("server") or ""), str(args.get("tool") or "")


class McpToolProvider:
    """Gives a caller ``mcp_tools`` and ``mcp_call`` when they may use any server, and
    resolves ``<server>__<tool>`` names on demand (:class:`~nexflow.tools.toolset.Toolset`)."""

    def __init__(self, servers: McpServers) -> None:
        self._servers = servers
        self._call = McpCallTool(servers)

    def tools_for(self, ctx: ToolContext) -> list[Tool]:
        listing = self._servers.listing(ctx)
        return [McpToolsTool(self._servers, listing), self._call] if listing else []

    def resolve(self, name: str, ctx: ToolContext) -> Tool | None:
        parts = split_name(name)
        if parts is None:
            return None
        server, tool = parts
        handle = next((h for h in self._servers.allowed(ctx) if h.name == server), None)
        if handle is None:
            return None
        if handle.known_tools is not None and handle.known(tool) is None:
            return None  # the server has listed its tools, and not this one
        return McpServerTool(self._servers, server, tool)
