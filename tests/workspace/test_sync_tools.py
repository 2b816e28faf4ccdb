"""Sync through the ``propose_changes`` tool (the fake LLM over loopback HTTP): a model
that calls it, one that only writes prose, one that calls it with a bad schema, one that
corrects itself when told what was wrong — and never a 5xx over HTTP."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from ws_support import USER, Env

from nexflow.llm.client import LLMResponse, ToolCall
from nexflow.panels.runtime import PanelService
from nexflow.testing.fake_llm import FakeLLMServer, Reply
from nexflow.testing.harness import GatewayHarness
from nexflow.workspace.api import SyncUnusable
from nexflow.workspace.service import WorkspaceService
from nexflow.workspace.sync_reply import PROPOSE_TOOL, TOOL_NAME, read_reply

NOTE = {"title": "Ship 1.2", "body": "From the to-do list"}
GOOD = {"target": "panel:notes", "summary": "Note the task", "append": {"notes": [NOTE]}}


def call(args: dict[str, Any] | list[Any] | str) -> Reply:
    return Reply(tool_calls=((TOOL_NAME, args),))  # type: ignore[arg-type]


@pytest.fixture
async def synced(env: Env, fake_llm: FakeLLMServer) -> tuple[WorkspaceService, PanelService]:
    env.llm = fake_llm
    ws = await env.start()
    assert env.panels is not None
    await env.panels.create(template="todo", owner=USER)
    await env.panels.create(template="notes", owner=USER)
    outcome = await env.panels.call_tool("todo", "add_item", {"text": "ship 1.2"}, user_id=USER)
    assert outcome.ok, outcome.error
    return ws, env.panels


async def test_the_tool_call_makes_the_patch_and_the_tool_is_offered(
    synced: tuple[WorkspaceService, PanelService], fake_llm: FakeLLMServer
) -> None:
    ws, panels = synced
    fake_llm.push(call({"changes": [GOOD]}))
    (patch,) = await ws.sync(USER, "todo")
    assert (patch.target, patch.summary) == ("panel:notes", "Note the task")
    (request,) = fake_llm.requests
    assert [t["function"]["name"] for t in request["tools"]] == [TOOL_NAME]
    assert TOOL_NAME in request["messages"][0]["content"]
    await ws.accept(patch.id, USER)
    assert panels.get("notes").state["notes"] == [NOTE]


async def test_plain_text_only_is_a_clear_error_after_one_correction(
    synced: tuple[WorkspaceService, PanelService], fake_llm: FakeLLMServer, env: Env
) -> None:
    ws, _ = synced
    fake_llm.push(Reply(text="Sure, the notes should mention it."), Reply(text="Done!"))
    with pytest.raises(SyncUnusable, match="answered in prose") as exc:
        await ws.sync(USER, "todo")
    assert exc.value.code == "sync_unusable"
    assert '"Sure, the notes should mention it."' in exc.value.message
    assert "asked to correct it" in exc.value.message and '"Done!"' in exc.value.message
    assert len(fake_llm.requests) == 2
    told = fake_llm.requests[1]["messages"][-1]
    assert told["role"] == "user" and "cannot be used" in told["content"]
    assert await ws.patches(USER) == []
    calls = await env.storage.audit_tail(5, "llm_call")
    assert [c["outcome"] for c in calls[:2]] == ["ok", "ok"]  # two real calls
    audit = await env.storage.audit_tail(1, "workspace_sync")
    assert audit[0]["outcome"] == "unusable" and len(audit[0]["data"]["problems"]) == 2


async def test_a_bad_schema_is_sent_back_and_the_corrected_call_is_used(
    synced: tuple[WorkspaceService, PanelService], fake_llm: FakeLLMServer
) -> None:
    ws, _ = synced
    fake_llm.push(call({"changes": [{"target": "panel:notes"}]}), call({"changes": [GOOD]}))
    (patch,) = await ws.sync(USER, "todo")
    assert patch.target == "panel:notes"
    second = fake_llm.requests[1]["messages"]
    assert second[-2]["role"] == "assistant" and second[-2]["tool_calls"]
    assert second[-1]["role"] == "tool" and "wrong shape" in second[-1]["content"]
    assert second[-1]["tool_call_id"] == second[-2]["tool_calls"][0]["id"]


async def test_a_bad_schema_twice_is_unusable(
    synced: tuple[WorkspaceService, PanelService], fake_llm: FakeLLMServer
) -> None:
    ws, _ = synced
    fake_llm.push(call({"changes": [{"target": "db:x", "summary": "s"}]}), call("{oops"))
    with pytest.raises(SyncUnusable, match=r"wrong shape.*asked to correct it.*not valid JSON"):
        await ws.sync(USER, "todo")
    assert await ws.patches(USER) == []


async def test_an_unknown_target_is_sent_back_to_the_model(
    synced: tuple[WorkspaceService, PanelService], fake_llm: FakeLLMServer
) -> None:
    ws, _ = synced
    ghost = {**GOOD, "target": "panel:ghost"}
    fake_llm.push(call({"changes": [ghost]}), call({"changes": [GOOD]}))
    (patch,) = await ws.sync(USER, "todo")
    assert patch.target == "panel:notes"
    assert "ghost" in fake_llm.requests[1]["messages"][-1]["content"]


async def test_a_model_without_tools_is_asked_again_for_json_text(
    synced: tuple[WorkspaceService, PanelService], fake_llm: FakeLLMServer
) -> None:
    ws, _ = synced
    fake_llm.push(Reply(status=400), Reply(text=json.dumps({"changes": [GOOD]})))
    (patch,) = await ws.sync(USER, "todo")
    assert patch.target == "panel:notes"
    first, second = fake_llm.requests
    assert first["tools"] and not second.get("tools")


def response(*calls: tuple[str, str], text: str = "") -> LLMResponse:
    tool_calls = tuple(ToolCall(f"c{i}", n, a) for i, (n, a) in enumerate(calls))
    return LLMResponse(content=text, model="m", tool_calls=tool_calls)


def test_read_reply_is_lenient_about_the_wrapper_only() -> None:
    one = json.dumps(GOOD)
    assert len(read_reply(response((TOOL_NAME, one)), 5).changes) == 1
    assert len(read_reply(response((TOOL_NAME, json.dumps([GOOD, GOOD]))), 5).changes) == 2
    assert len(read_reply(response(("functions." + TOOL_NAME, one)), 5).changes) == 1
    both = response((TOOL_NAME, one), (TOOL_NAME, json.dumps({"changes": [GOOD]})))
    assert len(read_reply(both, 5).changes) == 2
    assert read_reply(response((TOOL_NAME, "")), 5).changes == []
    assert read_reply(response(text='{"changes": []}'), 5).changes == []
    written = {"name": TOOL_NAME, "arguments": json.dumps({"changes": [GOOD]})}
    assert len(read_reply(response(text=json.dumps(written)), 5).changes) == 1
    spelled = {"name": TOOL_NAME, "parameters": GOOD}
    fenced = "```json\n" + json.dumps(spelled) + "\n```"
    assert len(read_reply(response(text=fenced), 5).changes) == 1
    with pytest.raises(SyncUnusable, match="called get_time instead"):
        read_reply(response(("get_time", "{}")), 5)
    with pytest.raises(SyncUnusable, match="answered nothing"):
        read_reply(response(text="  "), 5)
    with pytest.raises(SyncUnusable, match="more than the 1"):
        read_reply(response((TOOL_NAME, json.dumps([GOOD, GOOD]))), 1)
    with pytest.raises(SyncUnusable, match="wrong shape"):
        read_reply(response((TOOL_NAME, "[1, 2]")), 5)
    assert PROPOSE_TOOL["function"]["parameters"]["required"] == ["changes"]


async def test_over_http_an_unusable_answer_is_422_never_5xx(tmp_path: Path) -> None:
    async with GatewayHarness(tmp_path / "home", token="t") as gw:
        await gw.chat("/panel new todo")
        await gw.chat("/panel new notes")
        gw.llm.push(Reply(text="I would add a note."), Reply(text=""))
        refused = await gw.http.post("/api/v1/panels/todo/sync")
        assert refused.status_code == 422
        error = refused.json()["error"]
        assert error["code"] == "sync_unusable"
        assert "answered in prose" in error["message"] and "answered nothing" in error["message"]
        assert "call tools" in error["hint"]
        gw.llm.push(call({"changes": [GOOD]}))
        made = await gw.http.post("/api/v1/panels/todo/sync")
        assert made.status_code == 200 and made.json()["patches"][0]["target"] == "panel:notes"
