"""A panel's history on main, and restoring an earlier version as a new commit."""

from __future__ import annotations

import json

import pytest
from git import Repo
from ws_support import USER

from nexflow.panels.runtime import PanelService
from nexflow.workspace import Forbidden, NotFound
from nexflow.workspace.service import WorkspaceService


async def test_history_lists_the_panels_commits_newest_first(
    ws: WorkspaceService, panels: PanelService
) -> None:
    await panels.create(template="todo", owner=USER)
    await ws.mirror.flush()  # commits as they come; coalescing: tests/workspace/test_mirror.py
    await panels.create(template="notes", owner=USER)  # another panel: not in todo's history
    await ws.mirror.flush()
    await panels.call_tool("todo", "add_item", {"text": "one"}, user_id=USER)
    patch = await ws.propose(
        USER, "panel:todo", json.dumps({"append": {"items": [{"text": "two", "done": False}]}}),
        "Add two", "chat",
    )  # fmt: skip
    await ws.accept(patch.id, USER)
    history = await ws.history(USER, "todo")
    assert [c.message for c in history] == [
        f"Accept patch {patch.id}: Add two",
        f"todo: add_item(text='one') by {USER}",
        f"Create panel todo from todo by {USER}",
    ]
    assert all(c.author == USER for c in history)
    assert history[0].to_json()["sha"] == history[0].sha
    assert len(await ws.history(USER, "todo", limit=1)) == 1
    with pytest.raises(Forbidden):
        await ws.history("mallory", "todo")
    with pytest.raises(NotFound):
        await ws.history(USER, "ghost")


async def test_restore_brings_a_version_back_as_a_new_commit(
    ws: WorkspaceService, panels: PanelService
) -> None:
    await panels.create(template="todo", owner=USER)
    await ws.mirror.flush()
    await panels.call_tool("todo", "add_item", {"text": "one"}, user_id=USER)
    one = (await ws.history(USER, "todo"))[0]  # history flushes first
    ws.mirror.pause()  # the two calls below become one commit, made by restore's flush
    await panels.call_tool("todo", "add_item", {"text": "two"}, user_id=USER)
    await panels.call_tool("todo", "toggle_item", {"index": 0}, user_id=USER)

    info = await ws.restore(USER, "todo", one.sha[:10])
    assert info.message == f"Restore panel todo to {one.sha[:10]} by {USER}"
    assert info.author == USER
    assert panels.get("todo").state == {"items": [{"text": "one", "done": False}]}
    latest = (await panels.versions("todo", 1))[0]
    assert latest.kind == "restore" and latest.args == {"commit": one.sha}
    history = await ws.history(USER, "todo")
    assert history[0].sha == info.sha and len(history) == 4  # nothing rewritten
    assert history[1].message.splitlines()[0] == f"todo: add_item, toggle_item by {USER}"
    ws.mirror.resume()
    path = ws.workspace_path(USER) / "panels/todo.state.json"
    assert json.loads(path.read_text()) == {"items": [{"done": False, "text": "one"}]}
    repo = Repo(ws.workspace_path(USER))
    assert repo.commit("main").hexsha == info.sha
    repo.close()


async def test_restore_refuses_what_is_not_in_the_history(
    ws: WorkspaceService, panels: PanelService
) -> None:
    await panels.create(template="todo", owner=USER)
    first = (await ws.history(USER, "todo"))[-1]  # history flushes first
    for sha in ("deadbeef", "0" * 40, "", first.sha[:2]):
        with pytest.raises(NotFound):
            await ws.restore(USER, "todo", sha)
    await panels.create(template="notes", owner=USER)
    before_notes = first.sha  # notes did not exist at todo's first commit
    with pytest.raises(NotFound, match="did not exist"):
        await ws.restore(USER, "notes", before_notes)
    with pytest.raises(Forbidden):
        await ws.restore("mallory", "todo", first.sha)
