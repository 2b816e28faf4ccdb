"""Patch lifecycle: propose on a shadow branch, accept (merge, rebase, conflict), reject,
and what survives a crash. Real git, real panels."""

from __future__ import annotations

import json
from typing import Any

import pytest
from git import Repo
from ws_support import USER, Env

from nexflow.panels.runtime import PanelService
from nexflow.workspace import (
    Forbidden,
    NotFound,
    NotPending,
    WorkspaceError,
)
from nexflow.workspace.gitrepo import MAIN, GitRepo, RefMoved
from nexflow.workspace.service import WorkspaceService
from nexflow.workspace.store import PatchStore


def main_sha(ws: WorkspaceService, user: str = USER) -> str:
    repo = Repo(ws.workspace_path(user))
    try:
        return repo.commit("main").hexsha
    finally:
        repo.close()


def branches(ws: WorkspaceService) -> set[str]:
    repo = Repo(ws.workspace_path(USER))
    try:
        return {h.name for h in repo.heads}
    finally:
        repo.close()


def content(**body: Any) -> str:
    return json.dumps(body)


@pytest.fixture
async def todo(ws: WorkspaceService, panels: PanelService) -> PanelService:
    await panels.create(template="todo", owner=USER)
    await ws.mirror.flush()  # main has the panel before the test reads it
    return panels


async def test_propose_leaves_main_and_the_panel_alone(
    ws: WorkspaceService, todo: PanelService
) -> None:
    before = main_sha(ws)
    state_file = ws.workspace_path(USER) / "panels/todo.state.json"
    patch = await ws.propose(
        USER, "panel:todo", content(append={"items": [{"text": "a", "done": False}]}),
        "Add a", "chat",
    )  # fmt: skip
    assert patch.status == "pending" and patch.base == before
    assert patch.branch == f"nexflow/patch/{patch.id}" and patch.workspace == f"{USER}/default"
    assert main_sha(ws) == before
    assert json.loads(state_file.read_text()) == {"items": []}
    assert todo.get("todo").state == {"items": []}
    assert patch.branch in branches(ws)
    assert [p.id for p in await ws.patches(USER, "pending")] == [patch.id]
    assert await ws.patches("someone-else") == []

    diff = await ws.diff(patch.id)
    assert diff.state_keys == ("items",)
    assert '+      "text": "a"' in diff.text
    assert diff.to_json()["status"] == "pending"


async def test_accept_merges_into_main_and_updates_the_panel(
    ws: WorkspaceService, todo: PanelService
) -> None:
    before = main_sha(ws)
    patch = await ws.propose(
        USER, "panel:todo", content(append={"items": [{"text": "a", "done": False}]}),
        "Add a", "chat",
    )  # fmt: skip
    merged = await ws.accept(patch.id, USER)
    assert merged.status == "merged"
    repo = Repo(ws.workspace_path(USER))
    head = repo.commit("main")
    assert head.hexsha == merged.merge_commit
    assert head.message.strip() == f"Accept patch {patch.id}: Add a"
    assert head.author.name == USER
    assert head.parents[0].hexsha == before and len(head.parents) == 2
    repo.close()
    assert patch.branch not in branches(ws)
    record = todo.get("todo")
    assert record.state == {"items": [{"text": "a", "done": False}]}
    latest = (await todo.versions("todo", 1))[0]
    assert (latest.kind, latest.args, latest.user_id) == ("patch", {"patch": patch.id}, USER)
    state_file = ws.workspace_path(USER) / "panels/todo.state.json"
    assert json.loads(state_file.read_text()) == record.state  # the work tree follows main
    with pytest.raises(NotPending):
        await ws.accept(patch.id, USER)
    with pytest.raises(NotPending):
        await ws.reject(patch.id, USER)


async def test_reject_deletes_the_branch_and_leaves_main(
    ws: WorkspaceService, todo: PanelService
) -> None:
    before = main_sha(ws)
    patch = await ws.propose(USER, "file:notes/a.md", "# A\n", "A note", "chat")
    rejected = await ws.reject(patch.id, USER)
    assert rejected.status == "rejected"
    assert main_sha(ws) == before
    assert patch.branch not in branches(ws)
    assert not (ws.workspace_path(USER) / "notes/a.md").exists()
    with pytest.raises(NotPending):
        await ws.accept(patch.id, USER)


async def test_only_the_owner_decides(ws: WorkspaceService, todo: PanelService) -> None:
    patch = await ws.propose(USER, "file:notes/a.md", "# A\n", "A note", "chat")
    with pytest.raises(Forbidden):
        await ws.accept(patch.id, "mallory")
    with pytest.raises(Forbidden):
        await ws.reject(patch.id, "mallory")
    with pytest.raises(Forbidden):
        await ws.propose("mallory", "panel:todo", content(state={"items": []}), "x", "chat")
    with pytest.raises(NotFound):
        await ws.accept("nope", USER)
    assert (await ws.get(patch.id)).status == "pending"


async def test_a_failed_merge_leaves_main_untouched(
    ws: WorkspaceService, todo: PanelService, monkeypatch: pytest.MonkeyPatch
) -> None:
    patch = await ws.propose(
        USER, "panel:todo", content(state={"items": [{"text": "x", "done": True}]}), "x", "chat"
    )
    before = main_sha(ws)
    real = GitRepo.update_ref

    def refuse_main(self: GitRepo, ref: str, new: str, old: str) -> None:
        if ref == MAIN:
            raise RefMoved("simulated: main moved under us")
        real(self, ref, new, old)

    monkeypatch.setattr(GitRepo, "update_ref", refuse_main)
    with pytest.raises(WorkspaceError, match="nothing was changed"):
        await ws.accept(patch.id, USER)
    assert main_sha(ws) == before
    assert (await ws.get(patch.id)).status == "pending"
    assert todo.get("todo").state == {"items": []}
    monkeypatch.setattr(GitRepo, "update_ref", real)
    assert (await ws.accept(patch.id, USER)).status == "merged"  # and it still can be


async def test_invalid_panel_patches_are_refused_before_any_branch(
    ws: WorkspaceService, todo: PanelService
) -> None:
    before = branches(ws)
    cases = [
        (content(state={"items": "not a list"}), "must be a list"),
        (content(state={"colour": "red"}), "colour is not declared"),
        (content(append={"nope": [1]}), "nope is not declared"),
        (content(), "at least one of"),
        ("not json", "not valid"),
        (content(state={"items": []}), "changes nothing"),
        (content(nxml="<NexusPanel id='x'"), "not a valid panel"),
    ]
    for body, message in cases:
        with pytest.raises(WorkspaceError, match=message):
            await ws.propose(USER, "panel:todo", body, "bad", "chat")
    with pytest.raises(NotFound):
        await ws.propose(USER, "panel:ghost", content(state={"a": 1}), "x", "chat")
    with pytest.raises(WorkspaceError, match="not a patch target"):
        await ws.propose(USER, "dir:x", "x", "x", "chat")
    assert branches(ws) == before
    assert await ws.patches(USER) == []


async def test_nxml_patch_changes_the_definition(ws: WorkspaceService, todo: PanelService) -> None:
    nxml = todo.get("todo").nxml.replace(
        '<Action label="Clear finished" trigger="clear_done" />',
        '<Action label="Clear finished" trigger="clear_done" />\n'
        '      <Metric label="All" value="{$state.items.length}" />',
    )
    patch = await ws.propose(USER, "panel:todo", content(nxml=nxml), "Count all", "chat")
    diff = await ws.diff(patch.id)
    assert diff.nodes_added == ("Metric#All",) and diff.nodes_removed == ()
    assert diff.state_keys == ()
    await ws.accept(patch.id, USER)
    assert todo.get("todo").nxml == nxml
    rendered = await todo.render("todo")
    assert any(n.props.get("label") == "All" for n in rendered.tree.walk())


async def test_second_patch_on_the_same_panel_is_rebased_when_it_applies(
    ws: WorkspaceService, panels: PanelService
) -> None:
    await panels.create(template="dashboard", owner=USER)
    first = await ws.propose(USER, "panel:dashboard", content(state={"service": "web"}), "s", "c")
    second = await ws.propose(
        USER, "panel:dashboard", content(state={"endpoints": [{"path": "/x"}]}), "e", "c"
    )
    assert first.base == second.base
    await ws.accept(first.id, USER)
    merged = await ws.accept(second.id, USER)
    assert merged.status == "merged"
    assert merged.base == (await ws.get(first.id)).merge_commit  # rebased onto the new main
    state = panels.get("dashboard").state
    assert state["service"] == "web" and state["endpoints"] == [{"path": "/x"}]


async def test_second_patch_on_the_same_keys_is_a_conflict_not_an_overwrite(
    ws: WorkspaceService, todo: PanelService
) -> None:
    first = await ws.propose(
        USER, "panel:todo", content(append={"items": [{"text": "a", "done": False}]}), "a", "c"
    )
    second = await ws.propose(
        USER, "panel:todo", content(append={"items": [{"text": "b", "done": False}]}), "b", "c"
    )
    await ws.accept(first.id, USER)
    after_first = main_sha(ws)
    result = await ws.accept(second.id, USER)
    assert result.status == "conflict"
    assert "state key(s) items changed on main" in result.reason
    assert main_sha(ws) == after_first
    assert todo.get("todo").state == {"items": [{"text": "a", "done": False}]}
    with pytest.raises(NotPending, match="can only be rejected"):
        await ws.accept(second.id, USER)
    assert (await ws.reject(second.id, USER)).status == "rejected"
    assert second.branch not in branches(ws)


async def test_a_user_edit_after_the_patch_rebases_or_conflicts_too(
    ws: WorkspaceService, todo: PanelService
) -> None:
    patch = await ws.propose(
        USER, "panel:todo", content(append={"items": [{"text": "ai", "done": False}]}), "ai", "c"
    )
    outcome = await todo.call_tool("todo", "add_item", {"text": "mine"}, user_id=USER)
    assert outcome.ok, outcome.error
    result = await ws.accept(patch.id, USER)
    assert result.status == "conflict"  # both changed "items": the user's edit is kept
    assert todo.get("todo").state["items"] == [{"text": "mine", "done": False}]


async def test_file_patches_merge_line_by_line(ws: WorkspaceService) -> None:
    await ws.write_file(USER, "notes/plan.md", "# Plan\n\none\n\ntwo\n\nthree\n")
    first = await ws.propose(
        USER, "file:notes/plan.md", "# Plan\n\nONE\n\ntwo\n\nthree\n", "1", "c"
    )
    second = await ws.propose(
        USER, "file:notes/plan.md", "# Plan\n\none\n\ntwo\n\nTHREE\n", "3", "c"
    )
    third = await ws.propose(
        USER, "file:notes/plan.md", "# Plan\n\nuno\n\ntwo\n\nthree\n", "u", "c"
    )
    await ws.accept(first.id, USER)
    assert (await ws.accept(second.id, USER)).status == "merged"
    text = await ws.read_file(USER, "notes/plan.md")
    assert text == "# Plan\n\nONE\n\ntwo\n\nTHREE\n"
    conflict = await ws.accept(third.id, USER)
    assert conflict.status == "conflict" and "overlapping edits" in conflict.reason


async def test_a_crash_between_propose_and_accept_loses_nothing(
    env: Env, ws: WorkspaceService, todo: PanelService
) -> None:
    patch = await ws.propose(
        USER, "panel:todo", content(append={"items": [{"text": "a", "done": False}]}), "a", "c"
    )
    ws = await env.restart()  # a fresh service and panel runtime on the same home and db
    again = await ws.get(patch.id)
    assert again.status == "pending" and again.base == patch.base
    assert patch.branch in branches(ws)
    assert (await ws.accept(patch.id, USER)).status == "merged"
    assert env.panels is not None
    assert env.panels.get("todo").state["items"] == [{"text": "a", "done": False}]


async def test_a_crash_inside_accept_is_finished_on_start(
    env: Env, ws: WorkspaceService, todo: PanelService, monkeypatch: pytest.MonkeyPatch
) -> None:
    patch = await ws.propose(
        USER, "panel:todo", content(append={"items": [{"text": "a", "done": False}]}), "a", "c"
    )
    real = PatchStore.update

    async def crash(self: PatchStore, patch_id: str, **fields: Any) -> Any:
        if fields.get("status") == "merged":
            raise KeyboardInterrupt  # the process dies right after main moved
        return await real(self, patch_id, **fields)

    monkeypatch.setattr(PatchStore, "update", crash)
    with pytest.raises(KeyboardInterrupt):
        await ws.accept(patch.id, USER)
    monkeypatch.setattr(PatchStore, "update", real)
    assert (await ws.get(patch.id)).status == "pending"
    assert todo.get("todo").state == {"items": []}  # main moved, the panel did not
    ws = await env.restart()
    done = await ws.get(patch.id)
    assert done.status == "merged" and done.merge_commit == main_sha(ws)
    assert env.panels is not None
    assert env.panels.get("todo").state["items"] == [{"text": "a", "done": False}]
    assert patch.branch not in branches(ws)


async def test_on_start_a_lost_branch_is_a_conflict_and_a_lone_branch_is_adopted(
    env: Env, ws: WorkspaceService, todo: PanelService
) -> None:
    lost = await ws.propose(USER, "file:notes/a.md", "# A\n", "A", "chat")
    kept = await ws.propose(USER, "file:notes/b.md", "# B\n", "B note", "sync:todo")
    repo = Repo(ws.workspace_path(USER))
    repo.git.update_ref("-d", f"refs/heads/{lost.branch}")
    repo.git.update_ref("refs/heads/nexflow/patch/junk", repo.commit("main").hexsha)
    repo.close()
    store = PatchStore(env.storage)
    await env.storage._run(lambda c: c.execute("DELETE FROM patches WHERE id=?", (kept.id,)))
    assert await store.get(kept.id) is None
    ws = await env.restart()
    gone = await ws.get(lost.id)
    assert gone.status == "conflict" and "is gone" in gone.reason
    adopted = await ws.get(kept.id)
    assert (adopted.status, adopted.target, adopted.summary, adopted.source) == (
        "pending", "file:notes/b.md", "B note", "sync:todo",
    )  # fmt: skip
    assert adopted.base == kept.base
    assert "nexflow/patch/junk" not in branches(ws)  # no trailers: dropped
    assert (await ws.accept(kept.id, USER)).status == "merged"
    assert (ws.workspace_path(USER) / "notes/b.md").read_text() == "# B\n"


async def test_pending_patch_quota(env: Env) -> None:
    from nexflow.config.model import WorkspacesConfig
    from nexflow.workspace import QuotaExceeded

    env.config = WorkspacesConfig(max_pending_patches=1)
    ws = await env.start()
    await ws.propose(USER, "file:notes/a.md", "a", "a", "c")
    with pytest.raises(QuotaExceeded, match="pending patches"):
        await ws.propose(USER, "file:notes/b.md", "b", "b", "c")


async def test_a_flow_steps_key_proposes_the_patch_once(ws: WorkspaceService) -> None:
    """A flow step runs at least once: proposing again with its key returns the same
    patch (one branch, one pending row); without a key each call is a new patch."""
    first = await ws.propose(
        USER, "file:notes/k.md", "# K\n", "Keyed", "flow", idempotency_key="run9:w:1"
    )
    again = await ws.propose(
        USER, "file:notes/k.md", "# K\n", "Keyed", "flow", idempotency_key="run9:w:1"
    )
    assert again.id == first.id
    pending = [p.id for p in await ws.patches(USER, "pending")]
    assert pending == [first.id]
    other = await ws.propose(
        USER, "file:notes/k.md", "# K\n", "Keyed", "flow", idempotency_key="run9:w:2"
    )
    assert other.id != first.id  # the next attempt is another call
