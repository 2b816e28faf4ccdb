"""Nexflow as an MCP client: the tools of the servers in ``mcp.servers`` (docs/mcp.md).

* :mod:`~nexflow.mcp_client.manager`: :class:`McpServers`, every configured server and
  who may use it; built by the composition root, closed on shutdown.
* :mod:`~nexflow.mcp_client.server`: :class:`ServerHandle`, one server: lazy start, one
  owning task per connection, restart with backoff, call and start timeouts. It imports
  the MCP SDK, so it is imported only when ``mcp.servers`` names a server.
* :mod:`~nexflow.mcp_client.tools`: what the model calls (``mcp_tools``, ``mcp_call``,
  ``<server>__<tool>``) and :class:`McpToolProvider`, which offers them per caller.
* :mod:`~nexflow.mcp_client.listing`: the tool listing as Nexflow keeps it, results as text.

Exceptions (:mod:`~nexflow.mcp_client.errors`): :class:`McpClientError` and its
subclasses :class:`ServerUnavailable`, :class:`CallTimedOut`, :class:`NoSuchTool`; the
tools turn them into :class:`~nexflow.tools.base.ToolError` messages.
"""

from nexflow.mcp_client.errors import CallTimedOut, McpClientError, NoSuchTool, ServerUnavailable
from nexflow.mcp_client.manager import McpServers
from nexflow.mcp_client.tools import McpToolProvider

__all__ = [
    "CallTimedOut",
    "McpClientError",
    "McpServers",
    "McpToolProvider",
    "NoSuchTool",
    "ServerUnavailable",
]
