"""``nexflow doctor``: each server in ``mcp.servers`` is started, listed and stopped.

A server that starts says how many tools it has and how many of them need the user's
confirmation; one that does not says why (the same sentence the model would get) and
how to fix it. The servers run one after another, each within its
``startup_timeout_s``; nothing is left running.
"""

from __future__ import annotations

from nexflow.config.model import NexflowConfig
from nexflow.doctor import Check
from nexflow.mcp_client.errors import McpClientError
from nexflow.mcp_client.server import ServerHandle


async def mcp_checks(config: NexflowConfig) -> list[Check]:
    checks: list[Check] = []
    for name, server in config.mcp.servers.items():
        handle = ServerHandle(name, server, log_dir=config.home / "mcp")
        title = f"MCP server {name}"
        try:
            tools = await handle.list_tools()
        except McpClientError as exc:
            where = server.command or server.url
            checks.append(
                Check(
                    False,
                    title,
                    exc.message,
                    f"check mcp.servers.{name} ({where}); its stderr is in "
                    f"{config.home / 'mcp' / (name + '.log')}",
                )
            )
            continue
        finally:
            await handle.close()
        asks = sum(1 for t in tools if t.destructive)
        allowed = ", ".join(server.allow) or "nobody"
        checks.append(
            Check(
                True,
                title,
                f"{len(tools)} tools ({asks} ask the user first), allowed: {allowed}",
            )
        )
    return checks
