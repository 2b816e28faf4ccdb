"""Panels in a named workspace of their owner (``research``), not only ``default``: the
mirror, the start-up catch-up, patches, sync, history, restore, the NOG, quotas, tool
names and migration 7. Real git, real panels, real sandbox, the fake LLM for sync."""

from __future__ import annotations

import json
import sqlite3
import subprocess
from pathlib import Path
from typing import Any

import pytest
from git import Repo
from ws_support import USER, Env, StartWith, messages, on_main

from nexflow.panels.runtime import PanelService, WorkspaceNameInvalid
from nexflow.panels.runtime.wiring import BUNDLED_TEMPLATES
from nexflow.storage.migrations import MIGRATIONS
from nexflow.storage.sql_storage import SQLStorage
from nexflow.testing.fake_llm import FakeLLMServer, Reply
from nexflow.workspace import SyncFailed, WorkspaceError
from nexflow.workspace.mirror import PanelQuotaExceeded, PanelWorkspaceRefused
from nexflow.workspace.service import WorkspaceService

NOTE = {"title": "Ship 1.2", "body": "From the research to-do list"}


def main_file(path: Path, name: str) -> str:
    out = subprocess.run(
        ["git", "show", f"main:{name}"], cwd=path, capture_output=True, text=True, check=True
    )
    return out.stdout


def answer(*changes: dict[str, Any]) -> Reply:
    return Reply(text=json.dumps({"changes": list(changes)}))


async def test_a_panel_in_research_is_committed_there_and_not_in_default(
    ws: WorkspaceService, panels: PanelService
) -> None:
    await panels.create(template="notes", owner=USER)  # default, as before
    record = await panels.create(template="todo", owner=USER, workspace="research")
    assert record.workspace == "research" and panels.get("todo").workspace == "research"
    assert panels.get("notes").workspace == "default"
    assert await ws.workspaces(USER) == ["default", "research"]  # created with the panel
    await ws.mirror.flush()

    research, default = ws.workspace_path(USER, "research"), ws.workspace_path(USER)
    assert research == ws.root / USER / "research"
    assert {"panels/todo.nxml", "panels/todo.state.json"} <= on_main(research)
    assert not any(p.startswith("panels/notes") for p in on_main(research))
    assert {"panels/notes.nxml", "panels/notes.state.json"} <= on_main(default)
    assert not any(p.startswith("panels/todo") for p in on_main(default))
    assert messages(research)[0] == f"Create panel todo from todo by {USER}"

    # A press is mirrored into research; default does not move.
    before = messages(default)
    outcome = await panels.call_tool("todo", "add_item", {"text": "read"}, user_id=USER)
    assert outcome.ok, outcome.error
    await ws.mirror.flush()
    assert messages(research)[0] == f"todo: add_item(text='read') by {USER}"
    assert json.loads(main_file(research, "panels/todo.state.json")) == {
        "items": [{"done": False, "text": "read"}]
    }
    assert messages(default) == before

    # The NOG of each workspace holds its own panels only.
    context = (await ws.nog(USER, "research")).to_context()
    assert context.startswith(f"NOG {USER}/research: 1 panels")
    assert "[panel todo]" in context and "[panel notes]" not in context
    context = (await ws.nog(USER)).to_context()
    assert context.startswith(f"NOG {USER}/default: 1 panels")
    assert "[panel notes]" in context and "[panel todo]" not in context

    # Deleting it removes its files from research.
    await panels.delete("todo")
    await ws.mirror.flush()
    assert messages(research)[0] == "Delete panel todo"
    assert not any(p.startswith("panels/") for p in on_main(research))


async def test_panel_tools_name_a_named_workspace(
    ws: WorkspaceService, panels: PanelService
) -> None:
    await panels.create(template="todo", owner=USER, workspace="research")
    await panels.create(template="notes", owner=USER)
    names = [t.spec.name for t in panels.tools_of("todo")]
    assert f"{USER}__research__todo__add_item" in names
    assert all(len(n) <= 64 for n in names)
    assert panels.tools_of("todo")[0].qualified.startswith(f"{USER}:research:todo:")
    # the default workspace keeps the names it had (the panels.workspace setting)
    defaults = [t.spec.name for t in panels.tools_of("notes")]
    assert defaults and all(n.startswith(f"{USER}__main__notes__") for n in defaults)


async def test_an_invalid_workspace_name_creates_nothing(
    ws: WorkspaceService, panels: PanelService
) -> None:
    for bad in ("Research", "../x", "-x", "a" * 33, "with space"):
        with pytest.raises(WorkspaceNameInvalid, match="is not a workspace name"):
            await panels.create(template="todo", owner=USER, workspace=bad)
    assert panels.instances() == []
    assert await ws.workspaces(USER) == []
    assert not (ws.root / USER).exists()


async def test_workspace_quotas_refuse_a_new_panel_and_create_nothing(
    start_with: StartWith, env: Env
) -> None:
    ws = await start_with(max_workspaces=2, max_panels=1)
    panels = env.panels
    assert panels is not None
    await panels.create(template="todo", owner=USER)  # default: 1 of 2 workspaces
    await panels.create(template="notes", owner=USER, workspace="research")  # 2 of 2
    with pytest.raises(PanelQuotaExceeded, match="2 workspaces") as full:
        await panels.create(template="dashboard", owner=USER, workspace="third")
    assert full.value.code == "quota_exceeded"
    with pytest.raises(PanelQuotaExceeded, match="in workspace 'research'"):
        await panels.create(template="dashboard", owner=USER, workspace="research")
    assert sorted(r.id for r in panels.instances()) == ["notes", "todo"]
    assert await ws.workspaces(USER) == ["default", "research"]
    assert not (ws.root / USER / "third").exists()


async def test_patches_history_and_restore_work_in_the_panels_workspace(
    ws: WorkspaceService, panels: PanelService
) -> None:
    await panels.create(template="todo", owner=USER, workspace="research")
    await panels.create(template="notes", owner=USER)  # makes default exist too
    await panels.call_tool("todo", "add_item", {"text": "one"}, user_id=USER)
    research, default = ws.workspace_path(USER, "research"), ws.workspace_path(USER)
    one = (await ws.history(USER, "todo"))[0]
    assert one.message == f"todo: add_item(text='one') by {USER}"
    await ws.mirror.flush()  # notes reached default (history flushed research only)
    default_before = messages(default)
    assert default_before[0] == f"Create panel notes from notes by {USER}"

    item = {"text": "two", "done": False}
    content = json.dumps({"append": {"items": [item]}})
    patch = await ws.propose(USER, "panel:todo", content, "Add two", "chat")
    assert patch.workspace == f"{USER}/research"
    research_repo = Repo(research)
    assert f"nexflow/patch/{patch.id}" in [h.name for h in research_repo.heads]
    research_repo.close()
    with pytest.raises(WorkspaceError, match="is in workspace 'research', not 'default'"):
        await ws.propose(USER, "panel:todo", content, "elsewhere", "chat", "default")

    merged = await ws.accept(patch.id, USER)
    assert merged.status == "merged"
    assert messages(research)[0] == f"Accept patch {patch.id}: Add two"
    assert json.loads(main_file(research, "panels/todo.state.json"))["items"][-1] == item
    assert panels.get("todo").state["items"][-1] == item
    assert messages(default) == default_before  # nothing of this reached default

    history = await ws.history(USER, "todo")
    assert [c.message for c in history][:2] == [f"Accept patch {patch.id}: Add two", one.message]
    restored = await ws.restore(USER, "todo", one.sha)
    assert (
        messages(research)[0]
        == restored.message
        == (f"Restore panel todo to {one.sha[:10]} by {USER}")
    )
    assert panels.get("todo").state == {"items": [{"text": "one", "done": False}]}
    assert messages(default) == default_before

    # The history of a deleted panel is still found in the workspace it was in.
    await panels.delete("todo")
    assert (await ws.history(USER, "todo"))[0].message == "Delete panel todo"

    # A file patch goes to the named workspace only when it exists.
    note = await ws.propose(USER, "file:notes/plan.md", "# Plan\n", "Plan", "chat", "research")
    assert note.workspace == f"{USER}/research"
    with pytest.raises(WorkspaceError, match="no workspace 'nowhere'"):
        await ws.propose(USER, "file:notes/plan.md", "# Plan\n", "Plan", "chat", "nowhere")
    assert not (ws.root / USER / "nowhere").exists()


async def test_sync_from_research_patches_only_research(env: Env, fake_llm: FakeLLMServer) -> None:
    env.llm = fake_llm
    ws = await env.start()
    panels = env.panels
    assert panels is not None
    await panels.create(template="todo", owner=USER, workspace="research")
    await panels.create(template="notes", owner=USER, workspace="research")
    await panels.create(template="notes", owner=USER)  # notes-2, in default
    assert panels.get("notes-2").workspace == "default"
    await panels.call_tool("todo", "add_item", {"text": "ship 1.2"}, user_id=USER)
    research, default = ws.workspace_path(USER, "research"), ws.workspace_path(USER)

    fake_llm.push(
        answer(
            {"target": "panel:notes", "summary": "Note it", "append": {"notes": [NOTE]}},
            {"target": "file:notes/todo.md", "summary": "Write it down", "text": "- ship\n"},
        )
    )
    patches = await ws.sync(USER, "todo")
    assert [(p.target, p.workspace) for p in patches] == [
        ("panel:notes", f"{USER}/research"),
        ("file:notes/todo.md", f"{USER}/research"),
    ]
    prompt = fake_llm.requests[-1]["messages"][-1]["content"]
    assert prompt.startswith(f"NOG {USER}/research: 2 panels")
    assert "[panel notes]" in prompt and "notes-2" not in prompt  # default's panel unseen
    research_repo = Repo(research)
    branches = {h.name for h in research_repo.heads}
    research_repo.close()
    assert {f"nexflow/patch/{p.id}" for p in patches} <= branches
    default_repo = Repo(default)
    assert not any(h.name.startswith("nexflow/patch/") for h in default_repo.heads)
    default_repo.close()

    merged = await ws.accept(patches[0].id, USER)
    assert merged.status == "merged"
    assert messages(research)[0] == f"Accept patch {patches[0].id}: Note it"
    assert panels.get("notes").state["notes"] == [NOTE]
    assert panels.get("notes-2").state["notes"] == []

    # A model answer that reaches into default is refused as a whole: no patch at all.
    pending = len(await ws.patches(USER, "pending"))
    fake_llm.push(
        answer(
            {"target": "panel:notes-2", "summary": "Other ws", "append": {"notes": [NOTE]}},
            {"target": "file:notes/more.md", "summary": "fine alone", "text": "x\n"},
        )
    )
    with pytest.raises(SyncFailed, match=r"notes-2.*is in workspace 'default', not 'research'"):
        await ws.sync(USER, "todo")
    assert len(await ws.patches(USER, "pending")) == pending


async def test_start_up_catches_each_workspace_up(env: Env) -> None:
    ws = await env.start()
    panels = env.panels
    assert panels is not None
    await panels.create(template="todo", owner=USER, workspace="research")
    await panels.create(template="notes", owner=USER, workspace="lab")
    await ws.mirror.flush()
    research, lab = ws.workspace_path(USER, "research"), ws.workspace_path(USER, "lab")
    ws.mirror.pause()
    await panels.call_tool("todo", "add_item", {"text": "lost"}, user_id=USER)
    await panels.delete("notes")  # lab has no panel left
    assert ws.mirror.pending == 2
    await ws.mirror.stop(flush=False)  # a crash: the mirror's pending work is gone
    assert "panels/notes.nxml" in on_main(lab)

    ws = await env.restart()
    assert messages(research)[0] == "Mirror panel(s) todo from the runtime"
    assert json.loads(main_file(research, "panels/todo.state.json")) == {
        "items": [{"done": False, "text": "lost"}]
    }
    assert messages(lab)[0] == "Delete panel(s) notes the runtime no longer has"
    assert not any(p.startswith("panels/") for p in on_main(lab))
    assert not (ws.workspace_path(USER) / ".git").exists()  # nobody needed default


async def test_migration_7_keeps_existing_panels_in_default(
    tmp_path: Path, sandbox_cache: Path
) -> None:
    """A database at schema 6 with a panel: after the upgrade it is in ``default``, and
    the workspaces mirror it there."""
    db = tmp_path / "nexflow.db"
    conn = sqlite3.connect(db)
    conn.execute(
        "CREATE TABLE schema_version "
        "(version INTEGER PRIMARY KEY, description TEXT NOT NULL, applied_at REAL NOT NULL)"
    )
    for version, description, sql in MIGRATIONS:
        if version > 6:
            break
        for statement in filter(str.strip, sql.split(";")):
            conn.execute(statement)
        conn.execute("INSERT INTO schema_version VALUES (?, ?, 0)", (version, description))
    source = (BUNDLED_TEMPLATES / "todo.nxml").read_text()
    conn.execute(
        "INSERT INTO panels (id, template, owner, title, nxml, state, view, version, grants, "
        "created_at, updated_at) VALUES ('todo', 'todo', ?, 'To-do', ?, ?, '{}', 1, '[]', 1, 1)",
        (USER, source, json.dumps({"items": [{"text": "old", "done": False}]})),
    )
    conn.commit()
    conn.close()

    storage = SQLStorage(db)
    await storage.open()
    env = Env(tmp_path, storage, sandbox_cache)
    try:
        assert storage.schema_version == MIGRATIONS[-1][0]
        ws = await env.start()
        panels = env.panels
        assert panels is not None
        assert [(r.id, r.workspace) for r in panels.instances()] == [("todo", "default")]
        assert all(t.spec.name.startswith(f"{USER}__main__") for t in panels.tools_of("todo"))
        default = ws.workspace_path(USER)
        assert messages(default)[0] == "Mirror panel(s) todo from the runtime"
        assert json.loads(main_file(default, "panels/todo.state.json"))["items"][0]["text"] == (
            "old"
        )
        assert await ws.workspaces(USER) == ["default"]
        # a new panel still goes to default unless asked otherwise
        assert (await panels.create(template="notes", owner=USER)).workspace == "default"
    finally:
        await env.stop()
        await storage.close()


async def test_a_workspace_that_cannot_be_created_refuses_the_panel(
    ws: WorkspaceService, panels: PanelService
) -> None:
    (ws.root / USER).write_text("not a directory")  # the user's workspaces cannot exist
    with pytest.raises(PanelWorkspaceRefused, match="'research' could not be created"):
        await panels.create(template="todo", owner=USER, workspace="research")
    assert panels.instances() == []
