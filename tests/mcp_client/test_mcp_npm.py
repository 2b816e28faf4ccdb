"""The reference filesystem server from npm (@modelcontextprotocol/server-filesystem, pinned
in tests/mcp_client/npm, installed by ``npm ci --prefix tests/mcp_client/npm``), run with
node: its hints map to effects, reads run, writes ask first."""

import shutil
from collections.abc import AsyncIterator
from dataclasses import replace
from pathlib import Path

import pytest

from nexflow.config.model import McpConfig, McpServerConfig
from nexflow.mcp_client import McpServers, McpToolProvider
from nexflow.tools.base import ToolContext
from nexflow.tools.registry import ToolRegistry
from nexflow.tools.toolset import Toolbox
from nexflow.trust.effects import effects_of
from tests.mcp_client.conftest import HERE

ENTRY = HERE / "npm/node_modules/@modelcontextprotocol/server-filesystem/dist/index.js"
OWNER = ToolContext(user_id="u", session_id="s", channel="web", chat_id="c", role="owner")


@pytest.fixture
async def files(tmp_path: Path) -> AsyncIterator[tuple[McpServers, Path]]:
    node = shutil.which("node")
    assert node is not None, "node is needed for the npm reference server"
    assert ENTRY.is_file(), "run: npm ci --prefix tests/mcp_client/npm"
    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "readme.md").write_text("Nexflow docs: hello from the filesystem server.\n")
    config = McpServerConfig(command=node, args=[str(ENTRY), str(docs)], timeout_s=20)
    servers = McpServers(McpConfig(servers={"files": config}))
    yield servers, docs.resolve()
    await servers.close()


async def test_reads_run_and_writes_ask(files: tuple[McpServers, Path]) -> None:
    servers, docs = files
    tools = Toolbox(ToolRegistry(), [McpToolProvider(servers)]).tools_for(OWNER)
    listed = await tools.get("mcp_tools").run({"server": "files"}, OWNER)
    assert "files__read_text_file" in listed.content and "files__write_file" in listed.content
    read = tools.get("files__read_text_file")
    assert not effects_of(read, {}).side_effects  # readOnlyHint, openWorldHint false
    result = await read.run({"path": str(docs / "readme.md")}, OWNER)
    assert "hello from the filesystem server" in result.content and not result.untrusted
    write = tools.get("files__write_file")
    assert effects_of(write, {}).writes

    asked: list[str] = []

    async def answer(title: str, detail: str) -> bool:
        asked.append(detail)
        return len(asked) > 1  # no the first time, yes the second

    target = docs / "new.md"
    args = {"path": str(target), "content": "written by Nexflow"}
    declined = await write.run(args, replace(OWNER, confirm=answer))
    assert declined.is_error and not target.exists()
    assert "written by Nexflow" in asked[0]  # the card shows the call
    done = await write.run(args, replace(OWNER, confirm=answer))
    assert not done.is_error and target.read_text() == "written by Nexflow"
    outside = await read.run({"path": "/etc/hostname"}, OWNER)  # the server refuses
    assert outside.is_error
