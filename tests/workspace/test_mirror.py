"""The panel mirror runs in the background: a press returns before git, bursts coalesce
into few commits that still say what changed and who did it, stop() flushes, a crash
loses nothing the panel store has, and a patch's base holds every press before it.
Real git, real panels, real sandbox."""

from __future__ import annotations

import asyncio
import json
import subprocess
import threading
from pathlib import Path
from typing import Any

import pytest
from git import Repo
from ws_support import USER, Env, StartWith, state_on_main

from nexflow.panels.runtime import PanelService
from nexflow.panels.runtime.wiring import BUNDLED_TEMPLATES
from nexflow.workspace import patching
from nexflow.workspace.pending import MAX_LINES, Note, Pending
from nexflow.workspace.repos import README
from nexflow.workspace.service import WorkspaceService


def commits(path: Path) -> list[tuple[str, str, str]]:
    """(sha, author, message) of main's commits, newest first."""
    repo = Repo(path)
    try:
        return [
            (c.hexsha, str(c.author.name), str(c.message).strip())
            for c in repo.iter_commits("main")
        ]
    finally:
        repo.close()


async def test_a_press_returns_before_its_commit(
    ws: WorkspaceService, panels: PanelService
) -> None:
    await panels.create(template="todo", owner=USER)
    await panels.call_tool("todo", "add_item", {"text": "a"}, user_id=USER)
    await ws.mirror.flush()
    path = ws.workspace_path(USER)
    before = commits(path)
    action = (await panels.snapshot("todo")).buttons[0].action

    ws.mirror.pause()  # the worker takes no round: whatever a press waits for, it is not git
    outcome, snapshot = await panels.press(action, user_id=USER)
    toggled = await panels.call_tool("todo", "toggle_item", {"index": 0}, user_id=USER)
    assert outcome.ok and toggled.ok and snapshot.panel_id == "todo"
    assert ws.mirror.pending == 2
    assert commits(path) == before  # both returned; nothing is on main yet

    await ws.mirror.flush()
    assert ws.mirror.pending == 0
    sha, author, message = commits(path)[0]
    assert sha != before[0][0] and author == USER
    assert message.splitlines()[0] == f"todo: {outcome.tool}, toggle_item by {USER}"
    assert state_on_main(path, "todo") == panels.get("todo").state
    ws.mirror.resume()


async def test_a_burst_of_presses_becomes_one_commit_naming_every_handler(
    ws: WorkspaceService, panels: PanelService
) -> None:
    await panels.create(template="todo", owner=USER)
    await panels.create(template="server-monitor", owner=USER)
    await ws.mirror.flush()
    path = ws.workspace_path(USER)
    before = len(commits(path))

    ws.mirror.pause()
    for i in range(40):
        await panels.call_tool("todo", "add_item", {"text": f"task {i}"}, user_id=USER)
    for i in range(0, 20, 2):
        await panels.call_tool("todo", "toggle_item", {"index": i}, user_id=USER)
    await panels.call_tool("server-monitor", "restart_node", {}, triggered_by="ai", user_id=USER)
    assert ws.mirror.pending == 51 and len(commits(path)) == before
    ws.mirror.resume()
    await ws.mirror.flush()

    made = commits(path)[: len(commits(path)) - before]
    assert len(made) == 1  # 51 changes while git was held: one commit
    _, author, message = made[0]
    subject, _, body = message.partition("\n\n")
    assert subject == (
        f"todo: add_item ×40, toggle_item ×10; server-monitor: restart_node "
        f"by {USER}, the AI for {USER}"
    )
    assert author == USER  # one user, for all that the AI made one of the changes
    lines = body.splitlines()
    assert lines[0] == f"todo: add_item(text='task 0') by {USER}"
    assert len(lines) == MAX_LINES + 1 and lines[-1] == "… and 1 more"  # bounded
    assert state_on_main(path, "todo") == panels.get("todo").state
    assert state_on_main(path, "server-monitor") == panels.get("server-monitor").state


async def test_an_unpaused_burst_commits_every_change_in_few_commits(
    ws: WorkspaceService, panels: PanelService
) -> None:
    await panels.create(template="todo", owner=USER)
    await ws.mirror.flush()
    path = ws.workspace_path(USER)
    before = len(commits(path))
    for i in range(20):
        await panels.call_tool("todo", "add_item", {"text": f"t{i}"}, user_id=USER)
    await panels.call_tool("todo", "toggle_item", {"index": 3}, user_id=USER)
    await ws.mirror.flush()
    made = commits(path)[: len(commits(path)) - before]
    assert 1 <= len(made) <= 21
    told = "\n".join(m for _, _, m in made)
    assert all(f"add_item(text='t{i}')" in told for i in range(20))
    assert "toggle_item(index=3)" in told
    assert state_on_main(path, "todo") == panels.get("todo").state


async def test_stop_flushes_what_is_pending(env: Env) -> None:
    ws = await env.start()
    assert env.panels is not None
    await env.panels.create(template="todo", owner=USER)
    await ws.mirror.flush()
    ws.mirror.pause()
    await env.panels.call_tool("todo", "add_item", {"text": "last words"}, user_id=USER)
    path = ws.workspace_path(USER)
    assert "last words" not in commits(path)[0][2]
    await env.stop()  # stops the workspace layer, then the panels
    assert commits(path)[0][2] == f"todo: add_item(text='last words') by {USER}"
    assert state_on_main(path, "todo") == {"items": [{"text": "last words", "done": False}]}


async def test_a_crash_with_pending_mirror_work_is_caught_up_on_start(env: Env) -> None:
    ws = await env.start()
    panels = env.panels
    assert panels is not None
    await panels.create(template="todo", owner=USER)
    await panels.create(template="notes", owner=USER)
    await panels.create(template="dashboard", owner="bob")
    await ws.mirror.flush()
    path, bob = ws.workspace_path(USER), ws.workspace_path("bob")
    before, bob_before = commits(path), commits(bob)

    ws.mirror.pause()
    for text in ("one", "two", "three"):
        await panels.call_tool("todo", "add_item", {"text": text}, user_id=USER)
    await panels.delete("notes")
    await panels.delete("dashboard")  # bob has no panel left, only his workspace
    assert ws.mirror.pending == 5
    await ws.mirror.stop(flush=False)  # the process dies: what was pending is gone
    await env.stop()
    assert commits(path) == before and commits(bob) == bob_before

    ws = await env.start()  # same home, same database
    sha, author, message = commits(path)[0]
    assert author == "nexflow" and len(commits(path)) == len(before) + 1
    assert message == (
        "Mirror panel(s) todo from the runtime; delete panel(s) notes the runtime no longer has"
    )
    assert state_on_main(path, "todo") == {
        "items": [{"text": t, "done": False} for t in ("one", "two", "three")]
    }
    assert not (path / "panels/notes.nxml").exists()
    assert commits(bob)[0][2] == "Delete panel(s) dashboard the runtime no longer has"
    assert not (bob / "panels/dashboard.nxml").exists()
    await env.restart()  # nothing left to catch up
    assert commits(path)[0][0] == sha and len(commits(bob)) == len(bob_before) + 1


async def test_a_patch_proposed_after_presses_is_based_on_them(
    ws: WorkspaceService, panels: PanelService
) -> None:
    await panels.create(template="todo", owner=USER)
    await ws.mirror.flush()
    ws.mirror.pause()  # the presses are certainly still pending when propose runs
    await panels.call_tool("todo", "add_item", {"text": "mine 1"}, user_id=USER)
    await panels.call_tool("todo", "add_item", {"text": "mine 2"}, user_id=USER)
    patch = await ws.propose(
        USER, "panel:todo", json.dumps({"append": {"items": [{"text": "ai", "done": False}]}}),
        "Add ai", "chat",
    )  # fmt: skip
    path = ws.workspace_path(USER)
    sha, author, message = commits(path)[0]
    assert patch.base == sha and author == USER  # the presses' own commit, not a catch-up
    assert message.splitlines()[0] == f"todo: add_item ×2 by {USER}"
    ws.mirror.resume()
    # A press after the propose touches the same key; accept flushes it to main first,
    # so the patch is a conflict instead of silently overwriting the press.
    ws.mirror.pause()
    await panels.call_tool("todo", "toggle_item", {"index": 0}, user_id=USER)
    decided = await ws.accept(patch.id, USER)
    assert decided.status == "conflict" and "items" in decided.reason
    want = {"items": [{"text": "mine 1", "done": True}, {"text": "mine 2", "done": False}]}
    assert panels.get("todo").state == want and state_on_main(path, "todo") == want
    ws.mirror.resume()


async def test_a_failed_commit_is_retried_with_the_next_change(
    start_with: StartWith, env: Env
) -> None:
    todo = (BUNDLED_TEMPLATES / "todo.nxml").read_bytes()
    ws = await start_with(max_bytes=len(README.encode()) + len(todo) + 300)
    panels = env.panels
    assert panels is not None
    await panels.create(template="todo", owner=USER)
    await ws.mirror.flush()
    path = ws.workspace_path(USER)
    before = len(commits(path))
    ws.mirror.pause()
    await panels.call_tool("todo", "add_item", {"text": "x" * 1_000}, user_id=USER)
    await ws.mirror.flush()  # over the quota: logged, kept
    assert len(commits(path)) == before and ws.mirror.pending == 1
    await panels.call_tool("todo", "toggle_item", {"index": 0}, user_id=USER)
    await panels.call_tool("todo", "clear_done", {}, user_id=USER)
    await panels.call_tool("todo", "add_item", {"text": "small"}, user_id=USER)
    await ws.mirror.flush()
    assert ws.mirror.pending == 0
    message = commits(path)[0][2]
    assert message.splitlines()[0] == f"todo: add_item ×2, toggle_item, clear_done by {USER}"
    assert state_on_main(path, "todo") == {"items": [{"text": "small", "done": False}]}
    ws.mirror.resume()


def test_pending_messages() -> None:
    p = Pending("u1")
    p.add(Note("todo", "add_item", "todo: add_item(text='a') by u1", "u1", "u1"))
    assert p.message() == "todo: add_item(text='a') by u1" and p.author("owner") == "u1"
    p.add(Note("todo", "add_item", "todo: add_item(text='b') by u2", "u2", "u2"))
    assert p.message() == (
        "todo: add_item ×2 by u1, u2\n\n"
        "todo: add_item(text='a') by u1\ntodo: add_item(text='b') by u2"
    )
    assert p.author("owner") == "owner"  # several authors: the workspace owner
    many = Pending("u1")
    for i in range(30):
        many.add(Note("todo", "t", f"line {i}", f"user{i}", f"user{i}"))
    subject = many.message().splitlines()[0]
    assert subject.endswith("user9 and others") and "user10" not in subject


async def test_flush_waits_for_a_commit_the_worker_has_under_way(
    ws: WorkspaceService, panels: PanelService, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Regression: ``flush()`` returned while the worker's commit (already taken off the
    pending list) was still running, so main did not have a change noted before it."""
    await panels.create(template="todo", owner=USER)
    await ws.mirror.flush()
    path = ws.workspace_path(USER)
    started, release = threading.Event(), threading.Event()
    commit_main = patching.commit_main

    def slow(*args: Any, **kwargs: Any) -> Any:
        started.set()
        release.wait(10)
        return commit_main(*args, **kwargs)

    monkeypatch.setattr(patching, "commit_main", slow)
    await panels.call_tool("todo", "add_item", {"text": "a"}, user_id=USER)
    assert await asyncio.to_thread(started.wait, 10)  # the worker is committing it
    assert ws.mirror.pending == 0
    flushing = asyncio.create_task(ws.mirror.flush())
    await asyncio.sleep(0.05)
    assert not flushing.done()
    release.set()
    await flushing
    assert commits(path)[0][2] == f"todo: add_item(text='a') by {USER}"


def loose_objects(path: Path) -> int:
    out = subprocess.run(
        ["git", "count-objects", "-v"], cwd=path, capture_output=True, text=True, check=True
    )
    return int(dict(line.split(": ") for line in out.stdout.splitlines())["count"])


async def test_the_mirror_packs_a_repository_that_piles_up_loose_objects(
    start_with: StartWith, env: Env
) -> None:
    ws = await start_with(gc_every_commits=3, gc_loose_objects=20)
    assert env.panels is not None
    await env.panels.create(template="todo", owner=USER)
    path = ws.workspace_path(USER)
    peak = 0
    for i in range(12):  # one flush each: one commit each, ~4 loose objects a commit
        await env.panels.call_tool("todo", "add_item", {"text": f"t{i}"}, user_id=USER)
        await ws.mirror.flush()
        peak = max(peak, loose_objects(path))
    assert peak > 20  # it did pile up past the limit ...
    assert loose_objects(path) < peak  # ... and a gc packed it
    assert list((path / ".git" / "objects" / "pack").glob("*.pack"))
    assert state_on_main(path, "todo") == env.panels.get("todo").state  # nothing lost


async def test_gc_every_commits_zero_never_packs(start_with: StartWith, env: Env) -> None:
    ws = await start_with(gc_every_commits=0, gc_loose_objects=1)
    assert env.panels is not None
    await env.panels.create(template="todo", owner=USER)
    for i in range(4):
        await env.panels.call_tool("todo", "add_item", {"text": f"t{i}"}, user_id=USER)
        await ws.mirror.flush()
    path = ws.workspace_path(USER)
    assert not list((path / ".git" / "objects" / "pack").glob("*.pack"))
