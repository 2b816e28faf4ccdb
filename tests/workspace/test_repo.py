"""The workspace repository: created on first use, panel changes mirrored as commits by
their user, quotas, path checks and sharing. Real git, real panels, real sandbox."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest
from git import Repo
from ws_support import USER, Env, StartWith

from nexflow.panels.runtime import PanelService
from nexflow.workspace import (
    Forbidden,
    NotFound,
    QuotaExceeded,
    WorkspaceError,
)
from nexflow.workspace.mirror import PanelQuotaExceeded
from nexflow.workspace.service import WorkspaceService


def git(ws: WorkspaceService, user: str = USER) -> Repo:
    return Repo(ws.workspace_path(user))


def run_git(path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["git", *args], cwd=path, capture_output=True, text=True, check=False)


async def test_first_panel_creates_the_repo_and_commits_as_the_user(
    ws: WorkspaceService, panels: PanelService
) -> None:
    await panels.create(template="todo", owner=USER)
    await ws.mirror.flush()
    path = ws.workspace_path(USER)
    assert path == ws.root / USER / "default"
    repo = Repo(path)
    assert repo.active_branch.name == "main"
    head = repo.head.commit
    assert head.author.name == USER
    assert head.message.strip() == f"Create panel todo from todo by {USER}"
    assert len(head.parents) == 1
    assert head.parents[0].message.strip() == "Create workspace"
    # the work tree follows main and the state file is readable JSON
    assert (path / "panels" / "todo.nxml").read_text().startswith("<NexusPanel")
    state_text = (path / "panels" / "todo.state.json").read_text()
    assert state_text == '{\n  "items": []\n}\n'
    repo.close()


async def test_tool_calls_are_commits_feeds_are_not(
    ws: WorkspaceService, panels: PanelService
) -> None:
    await panels.create(template="todo", owner=USER)
    await ws.mirror.flush()
    await panels.create(template="server-monitor", owner=USER)
    await ws.mirror.flush()
    outcome = await panels.call_tool("todo", "add_item", {"text": "ship it"}, user_id=USER)
    await ws.mirror.flush()
    assert outcome.ok, outcome.error
    repo = git(ws)
    head = repo.head.commit
    assert head.message.strip() == f"todo: add_item(text='ship it') by {USER}"
    assert head.author.name == USER
    state = json.loads((ws.workspace_path(USER) / "panels/todo.state.json").read_text())
    assert state == {"items": [{"done": False, "text": "ship it"}]}

    commits = len(list(repo.iter_commits("main")))
    await panels.feed("server-monitor", {"cpu_load": 42.0})
    await panels.feed("server-monitor", {"cpu_load": 43.0})
    await ws.mirror.flush()
    assert len(list(repo.iter_commits("main"))) == commits  # feeds are not committed
    # ... they ride along with the next real change
    await panels.call_tool("server-monitor", "restart_node", {}, triggered_by="ai", user_id=USER)
    await ws.mirror.flush()
    head = repo.head.commit
    assert head.message.strip() == f"server-monitor: restart_node() by the AI for {USER}"
    monitor = json.loads((ws.workspace_path(USER) / "panels/server-monitor.state.json").read_text())
    assert monitor["cpu_load"] == 43.0 and monitor["status"] == "rebooting"
    repo.close()


async def test_a_rollback_is_a_commit_too(ws: WorkspaceService, panels: PanelService) -> None:
    await panels.create(template="todo", owner=USER)
    await ws.mirror.flush()
    await panels.call_tool("todo", "add_item", {"text": "x"}, user_id=USER)
    await ws.mirror.flush()
    await panels.rollback("todo", 1, user_id=USER)
    await ws.mirror.flush()
    repo = git(ws)
    assert repo.head.commit.message.strip() == f"Roll back panel todo to version 1 by {USER}"
    assert json.loads(repo.head.commit.tree["panels/todo.state.json"].data_stream.read()) == {
        "items": []
    }
    repo.close()


async def test_deleting_a_panel_deletes_its_files(
    ws: WorkspaceService, panels: PanelService
) -> None:
    await panels.create(template="notes", owner=USER)
    await ws.mirror.flush()
    await panels.delete("notes")
    await ws.mirror.flush()
    repo = git(ws)
    assert repo.head.commit.message.strip() == "Delete panel notes"
    assert not (ws.workspace_path(USER) / "panels/notes.nxml").exists()
    repo.close()


async def test_users_get_separate_workspaces(ws: WorkspaceService, panels: PanelService) -> None:
    await panels.create(template="todo", owner="alice")
    await panels.create(template="notes", owner="bob")
    await ws.mirror.flush()
    assert await ws.workspaces("alice") == ["default"]
    assert (ws.workspace_path("alice") / "panels/todo.nxml").exists()
    assert not (ws.workspace_path("alice") / "panels/notes.nxml").exists()
    assert (ws.workspace_path("bob") / "panels/notes.nxml").exists()


async def test_an_unsafe_user_id_gets_a_hashed_directory(
    ws: WorkspaceService, panels: PanelService
) -> None:
    await panels.create(template="todo", owner="../../etc")
    await ws.mirror.flush()
    path = ws.workspace_path("../../etc")
    assert path.parent.parent == ws.root and path.parent.name.startswith("u-")
    assert (path / "panels/todo.nxml").exists()


async def test_start_mirrors_panels_made_while_the_workspace_layer_was_off(env: Env) -> None:
    ws = await env.start()
    assert env.panels is not None
    env.panels.observer = None  # as if the workspace layer was not wired yet
    await env.panels.create(template="todo", owner=USER)
    assert not (ws.workspace_path(USER) / "panels/todo.nxml").exists()
    ws = await env.restart()
    repo = git(ws)
    assert repo.head.commit.message.strip() == "Mirror panel(s) todo from the runtime"
    repo.close()


async def test_panel_quota(start_with: StartWith, env: Env) -> None:
    await start_with(max_panels=2)
    assert env.panels is not None
    await env.panels.create(template="todo", owner=USER)
    await env.panels.create(template="notes", owner=USER)
    with pytest.raises(PanelQuotaExceeded) as exc:
        await env.panels.create(template="dashboard", owner=USER)
    assert "workspaces.max_panels = 2" in exc.value.message
    assert exc.value.code == "quota_exceeded"
    await env.panels.create(template="dashboard", owner="someone-else")  # per user


async def test_workspace_count_quota(start_with: StartWith) -> None:
    ws = await start_with(max_workspaces=2)
    await ws.create_workspace(USER, "default")
    await ws.create_workspace(USER, "novel")
    with pytest.raises(QuotaExceeded) as exc:
        await ws.create_workspace(USER, "third")
    assert "workspaces.max_workspaces = 2" in exc.value.message
    assert await ws.workspaces(USER) == ["default", "novel"]
    with pytest.raises(WorkspaceError, match="not a workspace name"):
        await ws.create_workspace("other", "Bad/Name")


async def test_byte_quota(start_with: StartWith) -> None:
    ws = await start_with(max_bytes=2_000, max_file_bytes=1_500)
    await ws.write_file(USER, "notes/a.md", "x" * 1_000)
    with pytest.raises(QuotaExceeded, match="more than its quota of 2000"):
        await ws.write_file(USER, "notes/b.md", "y" * 1_200)
    with pytest.raises(QuotaExceeded, match="max_file_bytes"):
        await ws.write_file(USER, "notes/c.md", "z" * 1_600)
    assert await ws.read_file(USER, "notes/b.md") is None


@pytest.mark.parametrize(
    "path",
    ["../outside.md", "notes/../../x", "/etc/passwd", ".git/config", "a/.git/x", "", "a\\b"],
)
async def test_paths_that_escape_the_workspace_are_refused(ws: WorkspaceService, path: str) -> None:
    with pytest.raises(WorkspaceError) as exc:
        await ws.write_file(USER, path, "nope")
    assert exc.value.hint
    with pytest.raises(WorkspaceError):
        await ws.propose(USER, f"file:{path}", "nope", "escape", "test")
    assert not (ws.root.parent / "outside.md").exists()


async def test_user_edits_commit_on_main(ws: WorkspaceService) -> None:
    info = await ws.write_file(USER, "notes/plan.md", "# Plan\n")
    assert info.author == USER and info.message == f"Edit notes/plan.md by {USER}"
    assert (ws.workspace_path(USER) / "notes/plan.md").read_text() == "# Plan\n"


async def test_share_creates_a_branch_for_the_other_user(ws: WorkspaceService) -> None:
    await ws.write_file("alice", "notes/plan.md", "# Plan\n")
    branch = await ws.share("alice", "default", "bob")
    assert branch == "share/bob"
    assert await ws.shared_with("bob") == [("alice/default", "share/bob")]
    info = await ws.write_file("bob", "notes/plan.md", "# Plan\nbob's idea\n", owner="alice")
    assert info.author == "bob"
    repo = git(ws, "alice")
    assert repo.commit("share/bob").hexsha == info.sha
    assert repo.commit("main").message.strip() == "Edit notes/plan.md by alice"  # untouched
    repo.close()
    assert await ws.read_file("bob", "notes/plan.md", owner="alice") == "# Plan\nbob's idea\n"
    assert await ws.read_file("alice", "notes/plan.md") == "# Plan\n"
    with pytest.raises(Forbidden):
        await ws.write_file("carol", "notes/plan.md", "hi", owner="alice")
    with pytest.raises(WorkspaceError, match="its owner"):
        await ws.share("alice", "default", "alice")
    with pytest.raises(NotFound):
        await ws.share("alice", "novel", "bob")


async def test_the_objects_written_without_git_pass_fsck(
    ws: WorkspaceService, panels: PanelService
) -> None:
    await panels.create(template="todo", owner=USER)
    await panels.create(template="notes", owner=USER)
    await panels.call_tool("todo", "add_item", {"text": "ünïcode ✓"}, user_id=USER)
    await ws.write_file(USER, "notes/deep/er/plan.md", "# Plan\n")
    await ws.write_file(USER, "notes.md", "a file beside a directory named notes\n")
    patch = await ws.propose(USER, "file:notes/deep/er/plan.md", "# Plan\nmore\n", "More", "chat")
    await panels.delete("notes")
    await ws.accept(patch.id, USER)
    path = ws.workspace_path(USER)
    fsck = run_git(path, "fsck", "--strict", "--no-dangling")
    assert fsck.returncode == 0, fsck.stderr
    assert run_git(path, "status", "--porcelain").stdout == ""  # the work tree follows main
    assert run_git(path, "ls-tree", "-r", "--name-only", "main").stdout.split() == [
        "README.md", "notes.md", "notes/deep/er/plan.md", "panels/todo.nxml",
        "panels/todo.state.json",
    ]  # fmt: skip
