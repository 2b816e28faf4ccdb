"""The file browser's workspace side (nexflow/workspace/browse.py): the tree, reading a
file with its last commit, an edit checked against its base, one file's history and its
restore as a new commit, on a user's main and on a share branch."""

from __future__ import annotations

import pytest

from nexflow.workspace.api import NotFound, Stale
from nexflow.workspace.browse import BadPath, Binary, PanelFile, browse_path, edit_path, language_of
from nexflow.workspace.service import WorkspaceService


def test_paths_and_languages() -> None:
    assert edit_path("./notes//plan.md") == "notes/plan.md"
    assert browse_path("panels/todo.nxml") == "panels/todo.nxml"
    for bad in ("../x", "/etc/passwd", "a/../../x", ".git/config", "a/.git/HEAD", "", "a\\b"):
        with pytest.raises(BadPath):
            edit_path(bad)
        with pytest.raises(BadPath):
            browse_path(bad)
    with pytest.raises(BadPath):
        browse_path("panels/../../x")
    with pytest.raises(PanelFile):
        edit_path("panels/todo.state.json")
    assert [language_of(p) for p in ("a.py", "b.TS", "c.yml", "d.md", "e", "f.css")] == [
        "python",
        "typescript",
        "yaml",
        "markdown",
        "text",
        "css",
    ]


async def test_tree_read_write_history_restore(ws: WorkspaceService) -> None:
    browser = ws.browser
    first = await browser.write("alice", "default", "notes/plan.md", "# Plan\n")
    read = await browser.read("alice", "default", "notes/plan.md")
    assert (read.content, read.sha, read.language) == ("# Plan\n", first.sha, "markdown")
    tree = {(e.path, e.kind) for e in await browser.tree("alice", "default")}
    assert {("notes", "dir"), ("notes/plan.md", "file"), ("README.md", "file")} <= tree
    assert not any(p.startswith(".git") for p, _ in tree)

    await browser.write("alice", "default", "other.txt", "x")  # main moves, plan does not
    second = await browser.write(
        "alice", "default", "notes/plan.md", "# Plan\n- a\n", base=first.sha
    )
    with pytest.raises(Stale):  # made on the first version: plan changed since
        await browser.write("alice", "default", "notes/plan.md", "lost", base=first.sha)
    with pytest.raises(Stale):
        await browser.write("alice", "default", "notes/plan.md", "lost", base="0" * 40)
    history = await browser.history("alice", "default", "notes/plan.md")
    assert [c.sha for c in history] == [second.sha, first.sha]

    restored = await browser.restore("alice", "default", "notes/plan.md", first.sha)
    assert restored.message.startswith("Restore notes/plan.md to")
    assert (await browser.read("alice", "default", "notes/plan.md")).content == "# Plan\n"
    assert len(await browser.history("alice", "default", "notes/plan.md")) == 3

    await browser.write("alice", "default", "blob.bin", "a\0b")
    with pytest.raises(Binary):
        await browser.read("alice", "default", "blob.bin")
    with pytest.raises(NotFound):
        await browser.read("alice", "default", "missing.md")
    with pytest.raises(NotFound):  # a named workspace that does not exist is not created
        await browser.tree("alice", "nope")
    assert "nope" not in await ws.workspaces("alice")


async def test_other_users_and_shares(ws: WorkspaceService) -> None:
    browser = ws.browser
    await browser.write("alice", "default", "secret.md", "mine")
    with pytest.raises(NotFound):  # not shared with bob: like a missing workspace
        await browser.read("bob", "default", "secret.md", owner="alice")
    assert "secret.md" not in {e.path for e in await browser.tree("bob", "default")}

    await ws.share("alice", "default", "bob")
    assert (await browser.read("bob", "default", "secret.md", owner="alice")).content == "mine"
    edit = await browser.write("bob", "default", "secret.md", "bob's", owner="alice")
    assert edit.author == "bob"
    assert (await browser.read("alice", "default", "secret.md")).content == "mine"  # main
    assert (await browser.read("bob", "default", "secret.md", owner="alice")).content == "bob's"
