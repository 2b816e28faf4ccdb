"""Every existing tool declares what it does (SPEC section 6)."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from nexflow.gateway.workspace_tools import PatchProposeTool, WorkspaceOverviewTool
from nexflow.memory.page_tools import ContextPageGet, ContextPages
from nexflow.memory.tools import MemoryGet, MemorySave, MemorySearch
from nexflow.panels import parse
from nexflow.panels.runtime.chat import PanelListTool, PanelOpenTool
from nexflow.panels.runtime.tools import build_tools
from nexflow.panels.runtime.versions import CallOutcome, TriggeredBy
from nexflow.tasks.tools import ReminderAddTool, ReminderCancelTool, ReminderListTool
from nexflow.tools.base import ToolSpec
from nexflow.tools.builtin import GetTime

REPO = Path(__file__).resolve().parents[2]


def declared(spec: ToolSpec) -> tuple[frozenset[str], bool]:
    return frozenset(spec.effects), spec.untrusted_output


READ = (frozenset(), False)
WRITE = (frozenset({"write"}), False)


def test_builtin_reminder_memory_workspace_and_panel_chat_tools() -> None:
    assert declared(GetTime.spec) == READ
    assert declared(ReminderAddTool.spec) == WRITE
    assert declared(ReminderListTool.spec) == READ
    assert declared(ReminderCancelTool.spec) == WRITE
    assert declared(MemorySave.spec) == WRITE
    # Read-only; their results say untrusted when a returned item is (see test_memory_taint).
    assert declared(MemorySearch.spec) == READ
    assert declared(MemoryGet.spec) == READ
    assert declared(ContextPages.spec) == READ
    assert declared(ContextPageGet.spec) == READ
    assert declared(WorkspaceOverviewTool.spec) == READ
    assert declared(PatchProposeTool.spec) == WRITE
    assert declared(PanelOpenTool.spec) == WRITE
    assert declared(PanelListTool.spec) == READ


class NoCaller:
    async def call_tool(
        self,
        panel_id: str,
        tool: str,
        args: Mapping[str, Any],
        *,
        triggered_by: TriggeredBy = "user",
        user_id: str | None = None,
    ) -> CallOutcome:
        raise AssertionError("not called")


def test_panel_tools_write_and_a_panel_that_reaches_the_net_is_egress_too() -> None:
    text = (REPO / "panels" / "todo.nxml").read_text()
    plain = build_tools("todo", "alice", "main", parse(text), NoCaller())
    assert plain and all(declared(t.spec) == WRITE for t in plain)
    caps = '<Capabilities><Http host="api.example.com" /></Capabilities>\n</NexusPanel>'
    online = parse(text.replace("</NexusPanel>", caps))
    tools = build_tools("todo", "alice", "main", online, NoCaller())
    assert tools and all(declared(t.spec) == (frozenset({"write", "egress"}), True) for t in tools)
