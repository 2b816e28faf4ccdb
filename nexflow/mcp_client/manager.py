"""All configured MCP servers, who may use which, and what the prompt says about them.

:class:`McpServers` is built once by the composition root from ``mcp.servers`` and
closed on shutdown (:meth:`McpServers.close` stops every running server and waits for
its task). A server is offered to a caller whose role or user id is in its ``allow``
list (default ``[owner]``); the check runs when a turn's toolset is built and again
when a call runs (:meth:`McpServers.handle_for`). A server a caller may not use looks
exactly like one that does not exist.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

from nexflow.config.model import McpConfig, McpServerConfig
from nexflow.mcp_client.errors import McpClientError
from nexflow.tools.base import ToolContext

if TYPE_CHECKING:
    from nexflow.mcp_client.server import ServerHandle

NAMES_CHARS = 160  # tool names per server in the prompt, at most (~40 tokens)


def may_use(config: McpServerConfig, ctx: ToolContext) -> bool:
    """Whether ``ctx``'s caller may use the server: its role or its user id is allowed."""
    return ctx.role in config.allow or (bool(ctx.user_id) and ctx.user_id in config.allow)


class McpServers:
    """The servers of ``mcp.servers``; none runs until a turn uses it."""

    def __init__(self, config: McpConfig, *, log_dir: Path | None = None) -> None:
        self._handles: dict[str, ServerHandle] = {}
        if not config.servers:
            return  # the MCP SDK (0.4 s to import) is loaded only when a server is configured
        from nexflow.mcp_client.server import ServerHandle

        self._handles = {
            name: ServerHandle(name, server, log_dir=log_dir)
            for name, server in config.servers.items()
        }

    def __iter__(self) -> Iterator[ServerHandle]:
        return iter(self._handles.values())

    def __len__(self) -> int:
        return len(self._handles)

    def allowed(self, ctx: ToolContext) -> list[ServerHandle]:
        return [h for h in self._handles.values() if may_use(h.config, ctx)]

    def handle_for(self, name: str, ctx: ToolContext) -> ServerHandle:
        """The server ``name`` if the caller may use it; else :class:`McpClientError`."""
        handle = self._handles.get(name)
        if handle is None or not may_use(handle.config, ctx):
            yours = ", ".join(h.name for h in self.allowed(ctx)) or "none"
            raise McpClientError(f"no MCP server named {name!r} (yours: {yours})")
        return handle

    def listing(self, ctx: ToolContext) -> str:
        """The caller's servers, ``; ``-separated: each with its description and tool
        names (known from its first start on), about 60 tokens per server at most."""
        entries = []
        for handle in self.allowed(ctx):
            about = handle.config.description.rstrip(". ")
            tools = handle.known_tools
            if tools is None:
                names = "tools listed on first use"
            else:
                names = ", ".join(t.model_name.partition("__")[2] for t in tools) or "no tools"
                if len(names) > NAMES_CHARS:
                    names = names[:NAMES_CHARS].rsplit(", ", 1)[0] + ", …"
            entries.append(f"{handle.name} ({about + ': ' if about else ''}{names})")
        return "; ".join(entries)

    async def close(self) -> None:
        await asyncio.gather(*(h.close() for h in self._handles.values()))
