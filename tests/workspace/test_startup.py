"""Start-up does not wait on git: importing the app loads no GitPython, ``start()`` returns
before recovery and the catch-up ran, operations wait for them, a press made meanwhile
still lands on main, and a failed recovery refuses operations with a clear message while
the panels keep working. Real git, real panels."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from pathlib import Path

import pytest
from structlog.testing import capture_logs
from ws_support import USER, Env, head_message, messages, state_on_main, todo_mirrored

from nexflow.panels.runtime.versions import PanelRecord
from nexflow.testing.fresh import run_fresh
from nexflow.workspace import Unavailable
from nexflow.workspace.gitrepo import GitRepo
from nexflow.workspace.mirror import PanelMirror
from nexflow.workspace.recovery import Recovery

REPO = Path(__file__).resolve().parents[2]


def gate_recovery(monkeypatch: pytest.MonkeyPatch) -> asyncio.Event:
    """Hold every Recovery.run until the returned event is set."""
    gate = asyncio.Event()
    run = Recovery.run

    async def held(self: Recovery) -> None:
        await gate.wait()
        await run(self)

    monkeypatch.setattr(Recovery, "run", held)
    return gate


async def eventually(check: Callable[[], bool], what: str) -> None:
    for _ in range(500):
        if check():
            return
        await asyncio.sleep(0.01)
    raise AssertionError(f"not within 5 s: {what}")


HEAVY = ("nexflow.workspace.service", "nexflow.workspace.nog", "git", "gitdb")


def test_importing_and_building_the_app_loads_no_workspace_stack(tmp_path: Path) -> None:
    # Cold start (spawn to the first /health) must stay under a second: the service
    # stack costs ~45 ms and GitPython 50-100 ms; both load in the start-up task.
    code = (
        "import sys\n"
        f"heavy = {HEAVY!r}\n"
        "def loaded():\n"
        "    return sorted(m for m in sys.modules if m in heavy or m.split('.')[0] in heavy)\n"
        "import nexflow.workspace\n"
        "print(loaded())\n"
        "import nexflow.app\n"
        "print(loaded())\n"
        "from nexflow.config.loader import load_config\n"
        "from nexflow.observability.logging import LogHub\n"
        "nexflow.app.build_application(load_config(None), LogHub())\n"
        "print(loaded())\n"
    )
    assert run_fresh(code, tmp_path).split("\n")[:3] == ["[]", "[]", "[]"]


async def test_a_press_during_a_slow_recovery_lands_on_main_after_readiness(
    env: Env, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = await todo_mirrored(env)
    before = messages(path)

    gate = gate_recovery(monkeypatch)
    ws = await env.start(ready=False)  # returns while recovery waits
    panels = env.panels
    assert panels is not None
    history = asyncio.create_task(ws.history(USER, "todo"))
    outcome = await panels.call_tool("todo", "add_item", {"text": "early"}, user_id=USER)
    assert outcome.ok
    await panels.create(template="notes", owner="bob")  # a new owner, also meanwhile
    await asyncio.sleep(0.05)
    assert not history.done() and ws.mirror.pending == 2
    assert messages(path) == before  # nothing touched git yet

    gate.set()
    await ws.ready()
    # The catch-up committed the press under its own message, before anything else.
    assert messages(path)[0] == f"todo: add_item(text='early') by {USER}"
    assert len(messages(path)) == len(before) + 1
    assert state_on_main(path, "todo") == {"items": [{"text": "early", "done": False}]}
    assert (await history)[0].message == f"todo: add_item(text='early') by {USER}"
    # bob had no panel when start-up began: the mirror's worker (started after the
    # catch-up) commits his, without anyone flushing.
    bob, created = ws.workspace_path("bob"), "Create panel notes from notes by bob"
    await eventually(lambda: head_message(bob) == created, "the worker commits bob's panel")


async def test_a_press_during_the_catch_up_is_committed_by_the_worker(
    env: Env, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = await todo_mirrored(env)

    # Hold the catch-up after it read the store: a press now is newer than what it holds.
    gate, reached = asyncio.Event(), asyncio.Event()
    catch_up_locked = PanelMirror.catch_up_locked

    async def held(
        self: PanelMirror,
        key: str,
        repo: GitRepo,
        records: list[PanelRecord],
        *,
        prune: bool = False,
    ) -> None:
        if prune:
            reached.set()
            await gate.wait()
        await catch_up_locked(self, key, repo, records, prune=prune)

    monkeypatch.setattr(PanelMirror, "catch_up_locked", held)
    ws = await env.start(ready=False)
    panels = env.panels
    assert panels is not None
    await reached.wait()
    await panels.call_tool("todo", "add_item", {"text": "mid catch-up"}, user_id=USER)
    assert ws.mirror.pending == 1
    gate.set()
    await ws.ready()
    pressed = f"todo: add_item(text='mid catch-up') by {USER}"
    await eventually(lambda: head_message(path) == pressed, "the worker commits the press")
    assert state_on_main(path, "todo") == panels.get("todo").state


async def test_a_failed_recovery_refuses_operations_and_keeps_the_panels(
    env: Env, monkeypatch: pytest.MonkeyPatch
) -> None:
    async def broken(self: Recovery) -> None:
        raise RuntimeError("the disk is on fire")

    monkeypatch.setattr(Recovery, "run", broken)
    with capture_logs() as logs:
        ws = await env.start(ready=False)
        with pytest.raises(Unavailable) as refused:
            await ws.ready()
    assert refused.value.code == "unavailable"
    assert "could not start" in refused.value.message
    assert "fire" not in refused.value.message  # the cause is in the log, not for users
    failed = [e for e in logs if e["event"] == "workspaces_start_failed"]
    assert failed and failed[0]["log_level"] == "error" and failed[0]["exc_info"] is True

    calls: list[Callable[[], Awaitable[object]]] = [
        lambda: ws.patches(USER),
        lambda: ws.propose(USER, "file:notes/a.md", "a", "A", "chat"),
        lambda: ws.history(USER, "todo"),
        lambda: ws.nog(USER),
    ]
    for call in calls:
        with pytest.raises(Unavailable):
            await call()
    panels = env.panels
    assert panels is not None
    await panels.create(template="todo", owner=USER)  # the gateway is still usable
    outcome = await panels.call_tool("todo", "add_item", {"text": "x"}, user_id=USER)
    assert outcome.ok and panels.get("todo").state["items"][0]["text"] == "x"


async def test_stop_cancels_a_start_up_still_running(
    env: Env, monkeypatch: pytest.MonkeyPatch
) -> None:
    gate_recovery(monkeypatch)  # never released
    ws = await env.start(ready=False)
    waiting = asyncio.create_task(ws.patches())
    await asyncio.sleep(0.01)
    await asyncio.wait_for(env.stop(), 5)
    with pytest.raises(Unavailable, match="not running"):
        await waiting
    with pytest.raises(Unavailable, match="not running"):
        await ws.ready()
