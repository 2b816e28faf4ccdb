"""One configured MCP server: started on first use, owned by one task, restarted after a
crash with backoff.

The SDK's transports (``stdio_client``, ``streamable_http_client``) and its ``Client``
are async context managers that run anyio task groups; entering one in a task and
leaving it in another crosses cancel scopes. So each connection lives inside one
long-lived task, :meth:`ServerHandle._own`, which enters the client, lists the tools,
hands the connected client out through a future and then waits until it is told to
let go (shutdown, or a call that found the connection dead). Calls from turns only send
requests on that client (JSON-RPC over memory streams, safe from any task) and bound
their own wait: ``timeout_s`` per call, ``startup_timeout_s`` for the start.

A dead connection (the process exited, the HTTP server went away) is noticed by the
call that hits it; the next use starts the server again, after a backoff that doubles
with each failure in a row (:data:`RESTART_BACKOFF`: 1 s, 2 s, 4 s … at most 60 s) and
resets when a call succeeds. A short wait is slept through; a longer one is reported to
the caller.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import time
from collections.abc import Callable, Mapping
from contextlib import AsyncExitStack
from pathlib import Path
from typing import Any, TextIO, cast

import httpx2
import mcp_types as types
import structlog
from mcp import Client
from mcp.client._transport import Transport
from mcp.client.stdio import StdioServerParameters, stdio_client
from mcp.client.streamable_http import streamable_http_client
from mcp.shared._httpx_utils import create_mcp_http_client
from mcp.shared.exceptions import MCPError
from mcp_types.jsonrpc import CONNECTION_CLOSED, REQUEST_TIMEOUT
from pydantic import ValidationError

from nexflow.backoff import Backoff
from nexflow.config.model import McpServerConfig
from nexflow.mcp_client.errors import (
    CallTimedOut,
    McpClientError,
    NoSuchTool,
    ServerUnavailable,
)
from nexflow.mcp_client.listing import McpToolInfo, tool_info

log = structlog.get_logger("nexflow.mcp_client")

RESTART_BACKOFF = Backoff(base_s=1.0, cap_s=60.0)
SLEEP_THROUGH_S = 2.0  # a restart due sooner than this is waited for, not refused
STOP_GRACE_S = 10.0
MAX_LIST_PAGES = 50
IDEMPOTENCY_META = "io.nexflow/idempotency-key"  # a flow step's key, in a call's _meta


class ServerHandle:
    """A server from ``mcp.servers``; :meth:`call` and :meth:`list_tools` start it lazily."""

    def __init__(
        self,
        name: str,
        config: McpServerConfig,
        *,
        log_dir: Path | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.name = name
        self.config = config
        self._log_dir = log_dir
        self._clock = clock
        self._lock = asyncio.Lock()  # one start at a time
        self._calls = asyncio.Semaphore(config.max_concurrency)
        self._client: Client | None = None
        self._task: asyncio.Task[None] | None = None
        self._release = asyncio.Event()
        self._tools: tuple[McpToolInfo, ...] | None = None
        self._failures = 0
        self._retry_at = 0.0
        self.last_error = ""
        self._closed = False

    # -- what is known without starting it ---------------------------------------------

    @property
    def known_tools(self) -> tuple[McpToolInfo, ...] | None:
        """The last listing (kept across restarts); None before the first start."""
        return self._tools

    def known(self, name: str) -> McpToolInfo | None:
        for info in self._tools or ():
            if name in (info.name, info.model_name.partition("__")[2]):
                return info
        return None

    @property
    def running(self) -> bool:
        return self._client is not None

    # -- use -----------------------------------------------------------------------------

    async def list_tools(self) -> tuple[McpToolInfo, ...]:
        await self._connect()
        assert self._tools is not None  # set by _own before the client is handed out
        return self._tools

    async def tool(self, name: str) -> McpToolInfo:
        """The tool called ``name`` (its real or its model-safe name); starts the server."""
        tools = await self.list_tools()
        found = self.known(name)
        if found is None:
            names = ", ".join(t.name for t in tools) or "none"
            raise NoSuchTool(f"MCP server {self.name} has no tool {name!r} (it has: {names})")
        return found

    async def call(
        self, tool: str, arguments: Mapping[str, Any], *, idempotency_key: str | None = None
    ) -> types.CallToolResult:
        """Call ``tool``; raises :class:`~nexflow.mcp_client.errors.McpClientError` s only.
        ``idempotency_key`` (a flow step's) goes in the request's ``_meta`` as
        ``io.nexflow/idempotency-key``: a server with side effects may apply them once
        per key (MCP has no standard for it; a server that ignores it runs again)."""
        client = await self._connect()
        timeout = self.config.timeout_s
        async with self._calls:
            try:
                # The SDK's own read timeout answers first; this one is the backstop.
                async with asyncio.timeout(timeout + 5):
                    result = await client.call_tool(
                        tool,
                        dict(arguments),
                        read_timeout_seconds=timeout,
                        meta=_meta(idempotency_key),
                    )
            except TimeoutError:
                raise self._timed_out(tool) from None
            except MCPError as exc:
                if exc.code == REQUEST_TIMEOUT:
                    raise self._timed_out(tool) from exc
                if exc.code == CONNECTION_CLOSED:
                    self._lost(client, "the connection closed")
                    raise ServerUnavailable(
                        f"MCP server {self.name} stopped while running {tool} (it crashed or "
                        "exited); it is started again on the next call"
                    ) from exc
                raise McpClientError(
                    f"MCP server {self.name} refused {tool}: {exc.error.message[:500]}"
                ) from exc
            except ValidationError as exc:
                raise McpClientError(
                    f"MCP server {self.name} answered {tool} with a malformed result"
                ) from exc
            except Exception as exc:  # transport failures (HTTP, pipes): the connection is gone
                log.warning("mcp_call_failed", server=self.name, tool=tool, exc_info=True)
                self._lost(client, _reason(exc, self.config))
                raise ServerUnavailable(
                    f"MCP server {self.name} failed while running {tool} "
                    f"({_reason(exc, self.config)}); it is started again on the next call"
                ) from exc
        self._failures = 0
        return result

    async def close(self) -> None:
        """Stop the server (if running) and wait for its task; no use afterwards."""
        self._closed = True
        running, self._client = self._client is not None, None
        await self._end_task(graceful=running)  # a start in progress is cancelled

    # -- lifecycle -----------------------------------------------------------------------

    async def _connect(self) -> Client:
        client = self._client
        if client is not None:
            return client
        async with self._lock:
            if self._client is not None:
                return self._client
            if self._closed:
                raise ServerUnavailable(f"MCP server {self.name} is shut down")
            wait = self._retry_at - self._clock()
            if wait > SLEEP_THROUGH_S:
                raise ServerUnavailable(
                    f"MCP server {self.name} is not available ({self.last_error}); Nexflow "
                    f"starts it again in {wait:.0f} s"
                )
            if wait > 0:
                await asyncio.sleep(wait)
            await self._end_task()  # the previous connection's task, if one is still ending
            return await self._start()

    async def _start(self) -> Client:
        ready: asyncio.Future[Client] = asyncio.get_running_loop().create_future()
        self._release = asyncio.Event()
        self._task = asyncio.create_task(
            self._own(ready, self._release), name=f"nexflow-mcp-{self.name}"
        )
        limit = self.config.startup_timeout_s
        try:
            async with asyncio.timeout(limit):
                client = await ready
        except TimeoutError:
            await self._end_task(graceful=False)  # still in the handshake
            self._failed(f"it did not start within {limit:.0f} s")
            raise CallTimedOut(
                f"MCP server {self.name} did not start within {limit:.0f} s "
                "(mcp.servers.*.startup_timeout_s)"
            ) from None
        except McpClientError as exc:
            await self._end_task()
            self._failed(exc.message)
            raise ServerUnavailable(
                f"MCP server {self.name} could not start: {exc.message}"
            ) from exc
        self._client = client
        self.last_error = ""
        log.info("mcp_server_started", server=self.name, tools=len(self._tools or ()))
        return client

    async def _own(self, ready: asyncio.Future[Client], release: asyncio.Event) -> None:
        """The task that owns one connection: enter, list, hand out, wait, leave."""
        client: Client | None = None
        try:
            async with AsyncExitStack() as stack:
                transport = await self._transport(stack)
                client = await stack.enter_async_context(
                    Client(
                        transport,
                        read_timeout_seconds=self.config.startup_timeout_s,
                        client_info=types.Implementation(name="nexflow", version=_version()),
                    )
                )
                listed: list[types.Tool] = []
                cursor: str | None = None
                for _ in range(MAX_LIST_PAGES):
                    page = await client.list_tools(cursor=cursor)
                    listed.extend(page.tools)
                    cursor = page.next_cursor
                    if cursor is None:
                        break
                self._tools = tuple(tool_info(self.name, t) for t in listed)
                if ready.done():  # the start timed out meanwhile
                    return
                ready.set_result(client)
                await release.wait()
        except Exception as exc:
            reason = _reason(exc, self.config)
            # A known failure (no such command, the process exited) needs no traceback.
            log.warning(
                "mcp_server_failed", server=self.name, reason=reason, exc_info=_unexpected(exc)
            )
            if not ready.done():
                ready.set_exception(McpClientError(reason))
            elif client is not None:
                self._lost(client, reason)  # the transport died under a handed-out client
        finally:
            if not ready.done():  # cancelled (shutdown) before the client was handed out
                ready.set_exception(McpClientError("it was stopped while starting"))

    async def _transport(self, stack: AsyncExitStack) -> Transport:
        c = self.config
        if c.url is not None:
            headers = {k: v.get_secret_value() for k, v in c.headers.items()}
            http = create_mcp_http_client(
                headers=headers, timeout=httpx2.Timeout(30.0, read=max(300.0, c.timeout_s))
            )
            await stack.enter_async_context(http)
            return streamable_http_client(c.url, http_client=http)
        assert c.command is not None  # the config model requires one of them
        params = StdioServerParameters(
            command=c.command,
            args=list(c.args),
            env=dict(c.env) or None,
            cwd=str(c.cwd) if c.cwd is not None else None,
        )
        return stdio_client(params, errlog=self._errlog(stack))

    def _errlog(self, stack: AsyncExitStack) -> TextIO:
        """Where the server's stderr goes: ``<home>/mcp/<name>.log`` (appended)."""
        if self._log_dir is None:
            return stack.enter_context(open(os.devnull, "w", encoding="utf-8"))
        self._log_dir.mkdir(parents=True, exist_ok=True)
        path = self._log_dir / f"{self.name}.log"
        return stack.enter_context(path.open("a", encoding="utf-8"))

    def _lost(self, client: Client, reason: str) -> None:
        """The connection of ``client`` is dead: let its task go and back off."""
        if self._client is not client:
            return  # another call noticed first
        self._client = None
        self._release.set()
        self._failed(reason)
        log.warning("mcp_server_lost", server=self.name, reason=reason)

    def _failed(self, reason: str) -> None:
        self._failures += 1
        self._retry_at = self._clock() + RESTART_BACKOFF.delay(self._failures)
        self.last_error = reason

    def _timed_out(self, tool: str) -> CallTimedOut:
        return CallTimedOut(
            f"MCP server {self.name} did not answer {tool} within "
            f"{self.config.timeout_s:.0f} s (mcp.servers.{self.name}.timeout_s)"
        )

    async def _end_task(self, *, graceful: bool = True) -> None:
        """Let the connection's task leave its contexts (``graceful``: it closes the
        session and stops the server; else it is cancelled, which does the same without
        waiting for a handshake) and wait for it."""
        task, self._task = self._task, None
        if task is None:
            return
        self._release.set()
        if not graceful:
            task.cancel()
        done, _ = await asyncio.wait({task}, timeout=STOP_GRACE_S)
        if not done:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task


def _leaf(exc: BaseException) -> BaseException:
    while isinstance(exc, BaseExceptionGroup) and exc.exceptions:
        exc = exc.exceptions[0]
    return exc


def _unexpected(exc: BaseException) -> bool:
    leaf = _leaf(exc)
    return not isinstance(leaf, MCPError | FileNotFoundError | PermissionError)


def _reason(exc: BaseException, config: McpServerConfig) -> str:
    """A short, safe account of why a connection failed (the traceback is in the log)."""
    exc = _leaf(exc)
    if isinstance(exc, FileNotFoundError) and config.command is not None:
        return f"the command {config.command!r} was not found"
    if isinstance(exc, PermissionError) and config.command is not None:
        return f"the command {config.command!r} may not be run (permission denied)"
    if isinstance(exc, MCPError):
        if exc.code == CONNECTION_CLOSED:
            return "the server closed the connection (it exited; see its log)"
        hint = " (check its url and headers)" if config.url else ""
        return f"the server answered with an error: {exc.error.message[:300]}{hint}"
    if isinstance(exc, httpx2.HTTPStatusError):
        return f"{config.url} answered HTTP {exc.response.status_code}"
    if isinstance(exc, httpx2.TransportError | OSError):
        return f"could not reach {config.url or config.command} ({type(exc).__name__})"
    if isinstance(exc, McpClientError):
        return exc.message
    return f"unexpected {type(exc).__name__} (details in the gateway log)"


def _version() -> str:
    from nexflow import __version__

    return __version__


def _meta(idempotency_key: str | None) -> types.RequestParamsMeta | None:
    if not idempotency_key:
        return None
    # an open map (extra_items=Any): extra keys round-trip, which mypy cannot see yet
    return cast(types.RequestParamsMeta, {IDEMPOTENCY_META: idempotency_key})
