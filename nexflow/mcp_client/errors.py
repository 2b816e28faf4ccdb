"""The MCP client's exceptions; every ``message`` is safe to show to the model and user.

::

    McpClientError
    ├── ServerUnavailable   the server would not start, crashed, or is waiting to restart
    ├── CallTimedOut        a tool call (or the start) took longer than its timeout
    └── NoSuchTool          the server has no tool by that name

SDK and transport errors are translated at :mod:`nexflow.mcp_client.server`; the
tracebacks stay in the log.
"""

from __future__ import annotations


class McpClientError(Exception):
    """Something about an MCP server went wrong; ``message`` says what, for people."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class ServerUnavailable(McpClientError):
    """The server is not running and could not be (re)started now."""


class CallTimedOut(McpClientError):
    """The server did not answer within its ``timeout_s`` (or ``startup_timeout_s``)."""


class NoSuchTool(McpClientError):
    """The server does not list a tool by that name."""
