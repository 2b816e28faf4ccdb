"""Tool calls in plain words (``label`` of the ``tool_call`` frames and of the timeline's
tool lines): a panel tool by its panel's title, built-ins in their own words, in English
and Russian, never the raw name or JSON."""

from __future__ import annotations

import json

from nexflow.orchestrator.tool_labels import ToolLabeler, humanise, tool_label
from nexflow.testing.fake_llm import Reply
from nexflow.testing.harness import GatewayHarness
from nexflow.tools.base import ToolSpec

PANEL_TOOL = "ad3c87de__main__todo__add_item"


def spec(name: str, description: str) -> ToolSpec:
    return ToolSpec(name=name, description=description, parameters={"type": "object"})


def test_a_panel_tool_is_its_panels_title_and_the_action() -> None:
    todo = spec(PANEL_TOOL, "Adds an item (panel 'To-do', instance todo; u:main:todo:add_item)")
    label = ToolLabeler(lambda: [todo], "en")
    assert label(PANEL_TOOL, json.dumps({"text": "milk"})) == "To-do: add item “milk”"
    russian = ToolLabeler(lambda: [todo], "ru")
    assert russian(PANEL_TOOL, '{"text": "молоко"}') == "To-do: add item «молоко»"
    # Without the toolset the panel id is made readable.
    assert tool_label("owner__main__server-monitor__filter_logs", "{}") == (
        "Server monitor: filter logs"
    )


def test_builtins_skills_and_others() -> None:
    assert tool_label("memory_save", '{"text": "likes tea"}') == "Memory: save “likes tea”"
    assert tool_label("memory_save", '{"text": "likes tea"}', "ru") == (
        "Память: сохранить «likes tea»"
    )
    assert tool_label("get_time", "{}") == "Clock: current time"
    run = json.dumps({"name": "shell-run", "input": {"command": "echo hi"}})
    assert tool_label("run_skill", run) == "Skill shell-run: run “echo hi”"
    assert tool_label("github__create_issue", '{"title": "Bug"}') == "Github: create issue “Bug”"
    assert tool_label("some_tool", "not json") == "Some tool"
    long = tool_label("memory_search", json.dumps({"query": "x" * 200}))
    assert len(long) < 90 and long.endswith("…”")
    assert "{" not in tool_label("memory_save", json.dumps({"data": {"a": 1}}))
    assert humanise("add_item") == "add item"


async def test_frames_and_the_timeline_carry_the_label(gateway: GatewayHarness) -> None:
    await gateway.chat("/panel new todo")
    tools = await gateway.owner_tools()
    (add,) = [t for t in tools if t.endswith("__todo__add_item")]
    gateway.llm.push(Reply(tool_calls=((add, {"text": "milk"}),)))
    data = await gateway.chat("add milk")
    session = (await gateway.http.get(f"/api/v1/sessions/{data['session']}")).json()
    calls = [i for i in session["timeline"] if i["kind"] == "tool_call"]
    assert [c["label"] for c in calls] == ["To-do: add item “milk”"]
