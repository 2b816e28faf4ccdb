"""git-basic through the real SkillRunner on a real repository in the workspace."""

from __future__ import annotations

from pathlib import Path

import git
import pytest
from mvp_support import RunSkill, exists

from nexflow.skills.isolation import IsolationLevel


def make_repo(ws: Path) -> git.Repo:
    repo = git.Repo.init(ws, initial_branch="main")
    with repo.config_writer() as cfg:
        cfg.set_value("user", "name", "Ana")
        cfg.set_value("user", "email", "ana@example.com")
    (ws / "app.py").write_text("print('v1')\n")
    repo.index.add(["app.py"])
    repo.index.commit("first")
    return repo


async def test_status_diff_commit_log_branch(
    run_skill: RunSkill, workspace: Path, level: IsolationLevel
) -> None:
    make_repo(workspace)
    (workspace / "app.py").write_text("print('v2')\n")
    (workspace / "notes.md").write_text("hi\n")

    r = await run_skill("git-basic", {"action": "status"}, level=level)
    assert r.ok, (r.error, r.stderr_tail)
    assert r.data == {
        "action": "status",
        "branch": "main",
        "clean": False,
        "files": [{"status": " M", "path": "app.py"}, {"status": "??", "path": "notes.md"}],
    }
    r = await run_skill("git-basic", {"action": "diff"}, level=level)
    assert r.ok and r.data is not None and "+print('v2')" in r.data["diff"]
    r = await run_skill(
        "git-basic", {"action": "commit", "message": "v2", "all": True}, level=level
    )
    assert r.ok, r.stderr_tail
    assert r.data is not None and r.data["files"] == ["app.py", "notes.md"]
    r = await run_skill("git-basic", {"action": "log", "max_count": 5}, level=level)
    assert r.ok and r.data is not None
    assert [c["message"] for c in r.data["commits"]] == ["v2", "first"]
    assert r.data["commits"][0]["author"] == "Ana"
    r = await run_skill(
        "git-basic", {"action": "branch", "op": "create", "name": "feature/x"}, level=level
    )
    assert r.ok and r.data == {
        "action": "branch",
        "current": "main",
        "branches": ["feature/x", "main"],
    }
    r = await run_skill(
        "git-basic", {"action": "branch", "op": "switch", "name": "feature/x"}, level=level
    )
    assert r.ok and r.data is not None and r.data["current"] == "feature/x"


async def test_commit_selected_paths_and_nothing_to_commit(
    run_skill: RunSkill, workspace: Path
) -> None:
    make_repo(workspace)
    (workspace / "a.txt").write_text("a")
    (workspace / "b.txt").write_text("b")
    r = await run_skill("git-basic", {"action": "commit", "message": "a", "paths": ["a.txt"]})
    assert r.ok and r.data is not None and r.data["files"] == ["a.txt"]
    r = await run_skill("git-basic", {"action": "commit", "message": "again"})
    assert not r.ok and "nothing to commit" in r.stderr_tail


async def test_empty_repo_default_author(run_skill: RunSkill, workspace: Path) -> None:
    git.Repo.init(workspace)
    r = await run_skill("git-basic", {"action": "log"})
    assert r.ok and r.data == {"action": "log", "commits": []}
    (workspace / "x").write_text("x")
    r = await run_skill("git-basic", {"action": "commit", "message": "init", "all": True})
    assert r.ok, r.stderr_tail
    assert git.Repo(workspace).head.commit.author.email == "nexflow@localhost"


async def test_hooks_and_fsmonitor_do_not_run(run_skill: RunSkill, workspace: Path) -> None:
    repo = make_repo(workspace)
    marker = workspace.parent / "pwned"
    hook = f"#!/bin/sh\ntouch {marker}\n"
    for name in ("pre-commit", "commit-msg", "post-commit", "post-checkout"):
        path = workspace / ".git" / "hooks" / name
        path.write_text(hook)
        path.chmod(0o755)
    fsmonitor = workspace / ".git" / "fsmon.sh"
    fsmonitor.write_text(hook)
    fsmonitor.chmod(0o755)
    with repo.config_writer() as cfg:
        cfg.set_value("core", "fsmonitor", str(fsmonitor))
    (workspace / "app.py").write_text("print('v3')\n")
    for payload in (
        {"action": "status"},
        {"action": "diff"},
        {"action": "commit", "message": "v3", "all": True},
        {"action": "branch", "op": "create", "name": "b"},
        {"action": "branch", "op": "switch", "name": "b"},
    ):
        r = await run_skill("git-basic", payload)
        assert r.ok, (payload, r.stderr_tail)
    assert not exists(marker)


@pytest.mark.parametrize(
    ("payload", "why"),
    [
        ({"action": "diff", "paths": ["../../etc/passwd"]}, "outside the workspace"),
        ({"action": "log", "paths": ["/etc"]}, "outside the workspace"),
        ({"action": "status", "repo": ".."}, "outside the workspace"),
        ({"action": "branch", "op": "create", "name": "--force"}, "not a valid branch name"),
        ({"action": "branch", "op": "create", "name": "a..b"}, "not a valid branch name"),
        ({"action": "branch", "op": "switch", "name": "nope"}, "does not exist"),
        ({"action": "commit", "message": " "}, "'message' is required"),
        ({"action": "status", "repo": "sub"}, "not a git repository"),
    ],
)
async def test_hostile_inputs_refused(
    run_skill: RunSkill, workspace: Path, payload: dict[str, object], why: str
) -> None:
    make_repo(workspace)
    (workspace / "sub").mkdir()
    r = await run_skill("git-basic", payload)
    assert not r.ok and r.exit_code == 2, r.stderr_tail
    assert why in r.stderr_tail


async def test_not_a_repository(run_skill: RunSkill, workspace: Path) -> None:
    r = await run_skill("git-basic", {"action": "status"})
    assert not r.ok and "is not a git repository" in r.stderr_tail
