"""The demo server over streamable HTTP on loopback: headers from the config (the token
the server demands), calls, a hanging call, a destructive tool, and a wrong token."""

import asyncio
import socket
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from nexflow.config.model import McpConfig, McpServerConfig
from nexflow.mcp_client import McpServers, McpToolProvider, ServerUnavailable
from nexflow.mcp_client.server import ServerHandle
from nexflow.tools.base import ToolContext
from nexflow.tools.registry import ToolRegistry
from nexflow.tools.toolset import Toolbox
from tests.mcp_client.conftest import DEMO

TOKEN = "demo-token-0123456789"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture
async def url(notes: Path) -> AsyncIterator[str]:
    port = free_port()
    process = await asyncio.create_subprocess_exec(
        sys.executable, str(DEMO), str(notes), "--http", str(port), TOKEN
    )
    try:
        async with asyncio.timeout(30):
            while True:
                try:
                    _, writer = await asyncio.open_connection("127.0.0.1", port)
                except OSError:
                    await asyncio.sleep(0.1)
                    continue
                writer.close()
                await writer.wait_closed()
                break
        yield f"http://127.0.0.1:{port}/mcp"
    finally:
        process.terminate()
        await process.wait()


def http(url: str, token: str = TOKEN, **extra: object) -> McpServerConfig:
    return McpServerConfig.model_validate(
        {"url": url, "headers": {"Authorization": f"Bearer {token}"}, **extra}
    )


async def test_calls_over_http_with_the_configured_headers(url: str) -> None:
    handle = ServerHandle("remote", http(url, timeout_s=1))
    try:
        result = await handle.call("read_note", {"name": "plan"})
        assert result.content[0].text == "Ship the MCP client on Friday."  # type: ignore[union-attr]
        assert {t.name for t in await handle.list_tools()} >= {"read_note", "delete_note"}
        with pytest.raises(Exception, match="did not answer hang within 1 s"):
            await handle.call("hang", {"seconds": 10})
        again = await handle.call("read_note", {"name": "missing"})
        assert again.content[0].text == "no note named missing"  # type: ignore[union-attr]
    finally:
        await handle.close()


async def test_a_destructive_tool_over_http_still_asks(url: str, notes: Path) -> None:
    servers = McpServers(McpConfig(servers={"remote": http(url)}))
    asked: list[str] = []

    async def no(title: str, detail: str) -> bool:
        asked.append(title)
        return False

    ctx = ToolContext(user_id="u", session_id="s", channel="web", chat_id="c", role="owner")
    try:
        tools = Toolbox(ToolRegistry(), [McpToolProvider(servers)]).tools_for(ctx)
        from dataclasses import replace

        result = await tools.get("remote__delete_note").run(
            {"name": "plan"}, replace(ctx, confirm=no)
        )
        assert result.is_error and asked == ["Run remote__delete_note?"]
        assert (notes / "plan.txt").exists()
    finally:
        await servers.close()


async def test_a_wrong_token_is_a_clear_failure(url: str) -> None:
    handle = ServerHandle("remote", http(url, token="wrong", startup_timeout_s=10))
    with pytest.raises(ServerUnavailable) as caught:
        await handle.list_tools()
    assert "could not start" in caught.value.message
    assert "check its url and headers" in caught.value.message
    assert "Traceback" not in caught.value.message
    await handle.close()
