"""A real MCP server (built with the SDK) run as a subprocess over stdio: lazy start,
tool hints, crash and restart, a hanging call, start failures and backoff."""

import sys
from pathlib import Path

import pytest

from nexflow.config.model import McpServerConfig
from nexflow.mcp_client.errors import CallTimedOut, NoSuchTool, ServerUnavailable
from nexflow.mcp_client.server import ServerHandle
from tests.mcp_client.conftest import demo_config


def starts(notes: Path) -> int:
    log = notes / "starts.log"
    return len(log.read_text().split()) if log.exists() else 0


async def test_starts_on_first_use_and_keeps_the_hints(notes: Path, tmp_path: Path) -> None:
    handle = ServerHandle("notes", demo_config(notes), log_dir=tmp_path / "logs")
    try:
        assert handle.known_tools is None and not handle.running and starts(notes) == 0
        result = await handle.call("read_note", {"name": "plan"})
        assert result.content[0].text == "Ship the MCP client on Friday."  # type: ignore[union-attr]
        assert starts(notes) == 1
        tools = {t.name: t for t in handle.known_tools or ()}
        assert set(tools) == {
            "read_note",
            "delete_note",
            "add_note",
            "crash",
            "hang",
            "fetch_news",
            "append_line",
        }
        assert (tools["read_note"].read_only, tools["read_note"].destructive) == (True, False)
        assert tools["delete_note"].destructive  # destructiveHint left at its default
        assert not tools["add_note"].destructive
        news = tools["fetch_news"]
        assert (news.read_only, news.destructive_hint, news.open_world) == (None, None, None)
        assert news.destructive
        with pytest.raises(NoSuchTool, match="has no tool 'nope'"):
            await handle.tool("nope")
    finally:
        await handle.close()
    assert not handle.running


async def test_a_crashed_server_is_started_again(notes: Path) -> None:
    handle = ServerHandle("notes", demo_config(notes))
    try:
        await handle.call("read_note", {"name": "plan"})
        with pytest.raises(ServerUnavailable, match="stopped while running crash"):
            await handle.call("crash", {})
        assert not handle.running
        result = await handle.call("read_note", {"name": "plan"})  # after a short backoff
        assert not result.is_error and starts(notes) == 2
    finally:
        await handle.close()


async def test_a_hanging_call_times_out_and_the_server_still_serves(notes: Path) -> None:
    handle = ServerHandle("notes", demo_config(notes, timeout_s=1))
    try:
        with pytest.raises(CallTimedOut, match=r"did not answer hang within 1 s"):
            await handle.call("hang", {"seconds": 20})
        result = await handle.call("read_note", {"name": "plan"})
        assert not result.is_error and starts(notes) == 1
    finally:
        await handle.close()


async def test_a_command_that_does_not_exist_says_so(tmp_path: Path) -> None:
    config = McpServerConfig(command=str(tmp_path / "no-such-server"))
    handle = ServerHandle("ghost", config)
    with pytest.raises(ServerUnavailable) as caught:
        await handle.list_tools()
    assert "could not start" in caught.value.message
    assert "was not found" in caught.value.message
    assert "Traceback" not in caught.value.message
    await handle.close()


async def test_a_server_that_exits_at_once_says_so() -> None:
    config = McpServerConfig(command=sys.executable, args=["-c", "pass"])
    handle = ServerHandle("quitter", config)
    with pytest.raises(ServerUnavailable, match="closed the connection"):
        await handle.list_tools()
    await handle.close()


async def test_a_server_that_never_answers_times_out_at_start() -> None:
    config = McpServerConfig(
        command=sys.executable, args=["-c", "import time; time.sleep(60)"], startup_timeout_s=1
    )
    handle = ServerHandle("sleeper", config)
    with pytest.raises(CallTimedOut, match="did not start within 1 s"):
        await handle.list_tools()
    assert not handle.running
    await handle.close()


async def test_restarts_back_off_and_say_when(tmp_path: Path) -> None:
    now = [1000.0]
    handle = ServerHandle(
        "ghost", McpServerConfig(command=str(tmp_path / "nothing")), clock=lambda: now[0]
    )
    for _ in range(3):  # fails 1, 2, 3 times: the next try is due 1, 2, then 4 s later
        now[0] += 100
        with pytest.raises(ServerUnavailable, match="could not start"):
            await handle.list_tools()
    now[0] += 1  # 3 s before the next try: refused without starting anything
    with pytest.raises(ServerUnavailable, match=r"starts it again in 3 s"):
        await handle.list_tools()
    await handle.close()


async def test_doctor_starts_each_server_and_says_how_it_went(notes: Path, tmp_path: Path) -> None:
    from nexflow.config import load_config
    from nexflow.mcp_client.doctor import mcp_checks

    path = tmp_path / "config.yml"
    path.write_text(
        "mcp:\n  servers:\n"
        f"    notes: {{command: {sys.executable!r}, args: [{str(demo_config(notes).args[0])!r},"
        f" {str(notes)!r}]}}\n"
        f"    ghost: {{command: {str(tmp_path / 'none')!r}}}\n"
    )
    config = load_config(path, {"NEXFLOW_HOME": str(tmp_path / "home")})
    good, bad = await mcp_checks(config)
    assert good.ok and good.detail == "7 tools (2 ask the user first), allowed: owner"
    assert not bad.ok and "was not found" in bad.detail and "mcp.servers.ghost" in bad.fix


async def test_closing_during_a_start_ends_it_at_once() -> None:
    import asyncio
    import time

    config = McpServerConfig(
        command=sys.executable, args=["-c", "import time; time.sleep(60)"], startup_timeout_s=30
    )
    handle = ServerHandle("sleeper", config)
    starting = asyncio.create_task(handle.list_tools())
    await asyncio.sleep(0.5)
    began = time.monotonic()
    await handle.close()
    with pytest.raises(ServerUnavailable, match="stopped while starting"):
        await starting
    assert time.monotonic() - began < 8


async def test_a_flow_steps_key_reaches_the_server_in_meta(notes: Path, tmp_path: Path) -> None:
    """A step runs at least once: a replayed call carries the same key, and a server
    that honours it applies the effect once."""
    handle = ServerHandle("notes", demo_config(notes), log_dir=tmp_path / "logs")
    try:
        for _ in range(2):
            await handle.call("append_line", {"text": "once"}, idempotency_key="run1:n:1")
        await handle.call("append_line", {"text": "twice"})  # no key: runs every time
        await handle.call("append_line", {"text": "twice"})
    finally:
        await handle.close()
    assert (notes / "lines.log").read_text().split() == ["once", "twice", "twice"]
