"""What the model gets: per-caller tools, names resolved on demand, effects from the
annotations, confirmation for destructive tools, and allow lists checked at call time."""

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from nexflow.config import load_config
from nexflow.config.model import McpConfig
from nexflow.mcp_client import McpServers, McpToolProvider
from nexflow.tools.base import ToolContext, ToolError, UnknownTool
from nexflow.tools.registry import ToolRegistry
from nexflow.tools.toolset import Toolbox
from nexflow.trust.effects import effects_of
from tests.mcp_client.conftest import demo_config

OWNER = ToolContext(user_id="u-owner", session_id="s", channel="web", chat_id="c", role="owner")
GUEST = ToolContext(user_id="u-guest", session_id="s", channel="web", chat_id="c", role="user")


@pytest.fixture
async def servers(notes: Path) -> AsyncIterator[McpServers]:
    config = McpConfig(
        servers={
            "notes": demo_config(notes, description="Team notes"),
            "shared": demo_config(notes, allow=["owner", "u-guest"]),
        }
    )
    manager = McpServers(config)
    yield manager
    await manager.close()


def asker(answer: bool, asked: list[str]) -> ToolContext:
    async def confirm(title: str, detail: str) -> bool:
        asked.append(f"{title}\n{detail}")
        return answer

    return ToolContext(
        user_id="u-owner", session_id="s", channel="web", chat_id="c", role="owner", confirm=confirm
    )


async def test_each_caller_sees_only_their_servers(servers: McpServers) -> None:
    box = Toolbox(ToolRegistry(), [McpToolProvider(servers)])
    mine = box.tools_for(OWNER)
    assert {t.spec.name for t in mine} == {"mcp_tools", "mcp_call"}
    listing = mine.get("mcp_tools").spec.description
    assert "notes (Team notes: tools listed on first use)" in listing
    assert "shared (" in listing
    guest = box.tools_for(GUEST)
    assert "notes" not in guest.get("mcp_tools").spec.description
    stranger = box.tools_for(ToolContext(user_id="x", session_id="s", channel="web", chat_id="c"))
    assert len(stranger) == 0
    # A server's tool is callable by name for those allowed, unknown to everyone else.
    assert mine.get("notes__read_note").spec.name == "notes__read_note"
    with pytest.raises(UnknownTool):
        guest.get("notes__read_note")
    assert guest.get("shared__read_note") is not None


async def test_names_appear_once_the_server_ran_and_stay_small(servers: McpServers) -> None:
    box = Toolbox(ToolRegistry(), [McpToolProvider(servers)])
    result = await box.tools_for(OWNER).get("mcp_tools").run({"server": "notes"}, OWNER)
    assert '"name":"notes__read_note"' in result.content
    assert '"input_schema"' in result.content and "read-only" in result.content
    listing = box.tools_for(OWNER).get("mcp_tools").spec.description
    entry = next(e for e in listing.split("Servers: ")[1].split("; ") if e.startswith("notes"))
    assert entry.startswith("notes (Team notes: read_note, delete_note, add_note")
    assert len(entry) <= 240  # ~60 tokens per server
    with pytest.raises(UnknownTool, match="no tool named 'notes__nope'"):
        box.tools_for(OWNER).get("notes__nope")  # listed now, and not among them


async def test_effects_follow_the_annotations(servers: McpServers) -> None:
    tools = Toolbox(ToolRegistry(), [McpToolProvider(servers)]).tools_for(OWNER)
    before = effects_of(tools.get("notes__read_note"), {})
    assert before.writes and before.egress and before.untrusted_output  # not known: worst
    await servers.handle_for("notes", OWNER).list_tools()
    read = effects_of(tools.get("notes__read_note"), {})
    assert not read.side_effects and not read.untrusted_output
    delete = effects_of(tools.get("notes__delete_note"), {})
    assert delete.writes and not delete.egress and delete.label == "notes__delete_note"
    news = effects_of(tools.get("notes__fetch_news"), {})  # no annotations: the worst case
    assert news.writes and news.egress and news.untrusted_output
    via_call = effects_of(tools.get("mcp_call"), {"server": "notes", "tool": "read_note"})
    assert not via_call.side_effects


async def test_a_destructive_tool_asks_and_a_no_runs_nothing(
    servers: McpServers, notes: Path
) -> None:
    tools = Toolbox(ToolRegistry(), [McpToolProvider(servers)]).tools_for(OWNER)
    asked: list[str] = []
    declined = await tools.get("notes__delete_note").run({"name": "plan"}, asker(False, asked))
    assert declined.is_error and "declined" in declined.content
    assert (notes / "plan.txt").exists() and not (notes / "deleted.log").exists()
    assert asked[0].startswith("Run notes__delete_note?") and '"plan"' in asked[0]
    cannot = await tools.get("notes__delete_note").run({"name": "plan"}, OWNER)  # no confirm
    assert cannot.is_error and "cannot ask" in cannot.content
    assert (notes / "plan.txt").exists()
    done = await tools.get("mcp_call").run(
        {"server": "notes", "tool": "delete_note", "arguments": {"name": "plan"}},
        asker(True, asked),
    )
    assert done.content == "deleted plan" and not (notes / "plan.txt").exists()
    # Additive and read-only tools do not ask.
    added = await tools.get("notes__add_note").run({"name": "n", "text": "t"}, OWNER)
    assert added.content == "saved n" and not added.untrusted
    news = await tools.get("notes__fetch_news").run({}, asker(True, asked))
    assert news.untrusted  # open world by default: the trust gate frames it as untrusted


async def test_allow_lists_are_checked_again_when_a_call_runs(servers: McpServers) -> None:
    owner_tool = Toolbox(ToolRegistry(), [McpToolProvider(servers)]).tools_for(OWNER)
    with pytest.raises(ToolError, match="no MCP server named 'notes'"):
        await owner_tool.get("notes__read_note").run({"name": "plan"}, GUEST)
    with pytest.raises(ToolError, match=r"yours: shared"):
        await owner_tool.get("mcp_call").run({"server": "notes", "tool": "read_note"}, GUEST)
    with pytest.raises(ToolError, match="has no tool 'nope'"):
        await owner_tool.get("notes__nope").run({}, OWNER)


def test_config_contract_and_secret_headers(tmp_path: Path) -> None:
    path = tmp_path / "config.yml"
    path.write_text(
        "mcp:\n"
        "  servers:\n"
        '    files: {command: "npx", args: ["-y", "@modelcontextprotocol/server-filesystem",'
        ' "/srv/docs"], env: {}}\n'
        '    remote: {url: "https://mcp.example.com/mcp", headers: {Authorization: "Bearer'
        ' ${REMOTE_MCP_TOKEN}"}}\n'
    )
    config = load_config(path, {"REMOTE_MCP_TOKEN": "s3cret", "NEXFLOW_HOME": str(tmp_path)})
    files, remote = config.mcp.servers["files"], config.mcp.servers["remote"]
    assert files.command == "npx" and files.allow == ["owner"] and files.timeout_s == 30
    assert remote.headers["Authorization"].get_secret_value() == "Bearer s3cret"
    assert "s3cret" not in repr(remote)
    for bad in ({"command": "x", "url": "http://h"}, {}, {"url": "ftp://h"}):
        with pytest.raises(ValueError, match="MCP server"):
            McpConfig.model_validate({"servers": {"s": bad}})
    with pytest.raises(ValueError, match="server name 'a__b'"):
        McpConfig.model_validate({"servers": {"a__b": {"command": "x"}}})
