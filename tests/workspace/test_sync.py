"""Explicit sync against the fake OpenAI-compatible LLM over real loopback HTTP."""

from __future__ import annotations

import json
from typing import Any

import pytest
from ws_support import USER, Env

from nexflow.config.model import BudgetsConfig
from nexflow.panels.runtime import PanelService
from nexflow.testing.fake_llm import FakeLLMServer, Reply
from nexflow.workspace import BudgetExhausted, SyncFailed
from nexflow.workspace.service import WorkspaceService
from nexflow.workspace.sync import parse_answer

NOTE = {"title": "Ship 1.2", "body": "From the to-do list: ship 1.2"}


def answer(*changes: dict[str, Any]) -> Reply:
    return Reply(text=json.dumps({"changes": list(changes)}))


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


async def test_sync_makes_a_patch_for_the_notes_panel(
    synced: tuple[WorkspaceService, PanelService], fake_llm: FakeLLMServer, env: Env
) -> None:
    ws, panels = synced
    fake_llm.push(
        answer(
            {"target": "panel:notes", "summary": "Note the new task", "append": {"notes": [NOTE]}},
            {"target": "panel:todo", "summary": "ignored: the source", "state": {"items": []}},
        )
    )
    patches = await ws.sync(USER, "todo")
    assert len(patches) == 1
    patch = patches[0]
    assert (patch.status, patch.target, patch.source) == ("pending", "panel:notes", "sync:todo")
    assert patch.summary == "Note the new task"
    assert panels.get("notes").state["notes"] == []  # nothing applied before review

    request = fake_llm.requests[-1]
    assert request["model"] == "cheap"
    prompt = request["messages"][-1]["content"]
    assert prompt.startswith("NOG u1/default: 2 panels")
    assert '[panel todo] "To-do"' in prompt.splitlines()[1]
    assert '"ship 1.2"' in prompt  # the change and the state travel with the NOG
    assert "add_item" in prompt and "Source panel: todo" in prompt

    audit = await env.storage.audit_tail(5, "llm_call")
    assert audit[0]["outcome"] == "ok" and audit[0]["user_id"] == USER
    assert audit[0]["data"]["purpose"] == "sync" and audit[0]["data"]["route"] == "sync"
    synced_audit = await env.storage.audit_tail(1, "workspace_sync")
    assert synced_audit[0]["data"]["patches"] == [patch.id]

    await ws.accept(patch.id, USER)
    assert panels.get("notes").state["notes"] == [NOTE]


async def test_sync_can_patch_a_file(
    synced: tuple[WorkspaceService, PanelService], fake_llm: FakeLLMServer
) -> None:
    ws, _ = synced
    fake_llm.push(
        Reply(
            text="```json\n"
            + json.dumps(
                {"changes": [{"target": "file:notes/todo.md", "summary": "s", "text": "- ship\n"}]}
            )
            + "\n```"
        )
    )
    (patch,) = await ws.sync(USER, "todo")
    assert patch.target == "file:notes/todo.md"
    assert "+- ship" in (await ws.diff(patch.id)).text


@pytest.mark.parametrize(
    ("reply", "message"),
    [
        ("Sure! I would add a note.", "not valid JSON"),
        ('{"changes": [{"target": "panel:notes"}]}', "wrong shape"),
        ('{"changes": [{"target": "db:x", "summary": "s", "text": "t"}]}', "wrong shape"),
        (
            json.dumps(
                {
                    "changes": [
                        {"target": "file:notes/a.md", "summary": "fine", "text": "a"},
                        {"target": "panel:notes", "summary": "bad", "state": {"notes": 3}},
                    ]
                }
            ),
            "refused, no patch was made",
        ),
        (
            json.dumps({"changes": [{"target": "file:../x", "summary": "s", "text": "t"}]}),
            "escapes the workspace",
        ),
    ],
)
async def test_an_unusable_answer_is_a_clear_error_and_no_patch(
    synced: tuple[WorkspaceService, PanelService],
    fake_llm: FakeLLMServer,
    reply: str,
    message: str,
) -> None:
    ws, _ = synced
    fake_llm.push(Reply(text=reply))
    with pytest.raises(SyncFailed, match=message) as exc:
        await ws.sync(USER, "todo")
    assert exc.value.code == "sync_unusable"
    assert await ws.patches(USER) == []


async def test_nothing_affected_is_no_patch(
    synced: tuple[WorkspaceService, PanelService], fake_llm: FakeLLMServer
) -> None:
    ws, _ = synced
    fake_llm.push(answer())
    assert await ws.sync(USER, "todo") == []


async def test_provider_failure_is_a_sync_error(
    synced: tuple[WorkspaceService, PanelService], fake_llm: FakeLLMServer, env: Env
) -> None:
    ws, _ = synced
    fake_llm.push(*[Reply(status=400)] * 4)
    with pytest.raises(SyncFailed, match="could not be asked"):
        await ws.sync(USER, "todo")
    assert (await env.storage.audit_tail(1, "llm_call"))[0]["outcome"] == "error"


async def test_an_exhausted_background_budget_refuses_without_calling_the_model(
    env: Env, fake_llm: FakeLLMServer
) -> None:
    env.llm = fake_llm
    env.budgets = BudgetsConfig(background_daily_tokens=100)
    ws = await env.start()
    assert env.panels is not None
    await env.panels.create(template="todo", owner=USER)
    fake_llm.push(answer())
    with pytest.raises(BudgetExhausted, match="background token budget") as exc:
        await ws.sync(USER, "todo")
    assert exc.value.code == "budget_exhausted"
    assert fake_llm.requests == []
    assert (await env.storage.audit_tail(1, "budget"))[0]["outcome"] == "refused"


async def test_sync_is_charged_to_the_background_budget(
    synced: tuple[WorkspaceService, PanelService], fake_llm: FakeLLMServer, env: Env
) -> None:
    ws, _ = synced
    fake_llm.push(answer())
    await ws.sync(USER, "todo")
    call = (await env.storage.audit_tail(1, "llm_call"))[0]
    assert call["data"]["tokens_in"] > 0
    used = await env.storage.used_tokens(USER, "background", "")
    # The reservation (prompt estimate + sync_reply_tokens) was settled with the real usage.
    assert used == call["data"]["tokens_in"] + call["data"]["tokens_out"]
    assert await env.storage.reserved_tokens(USER, "background") == 0


def test_parse_answer_limits_the_number_of_changes() -> None:
    many = {"changes": [{"target": f"file:n{i}.md", "summary": "s", "text": "t"} for i in range(3)]}
    with pytest.raises(SyncFailed, match="more than the 2"):
        parse_answer(json.dumps(many), 2)
