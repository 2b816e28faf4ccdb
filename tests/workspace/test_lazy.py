"""The lazy workspace layer the composition root holds: ``start()`` returns before the
service stack is even imported, a panel change made before the mirror observes still
reaches main (the catch-up reads the store), a failed load refuses operations with a
clear message and a traceback in the log, and ``stop()`` cancels a load still running.
Real git, real panels."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

import pytest
from structlog.testing import capture_logs
from test_startup import eventually
from ws_support import USER, Env, head_message, messages, state_on_main, todo_mirrored

from nexflow.workspace import NotFound, Unavailable
from nexflow.workspace import lazy as lazy_module
from nexflow.workspace.lazy import LazyWorkspaces
from nexflow.workspace.service import WorkspaceService


def gate_service_start(monkeypatch: pytest.MonkeyPatch) -> asyncio.Event:
    """Hold every WorkspaceService.start (before the mirror observes) until set."""
    gate = asyncio.Event()
    start = WorkspaceService.start

    async def held(self: WorkspaceService) -> None:
        await gate.wait()
        await start(self)

    monkeypatch.setattr(WorkspaceService, "start", held)
    return gate


async def test_operations_wait_for_the_load_then_delegate(env: Env) -> None:
    await env.start_panels()
    lazy = LazyWorkspaces(env.build)
    await lazy.start()
    try:
        assert await lazy.patches(USER) == []
        assert lazy.state == "ready"
        service = await lazy.service()
        assert service is env.ws
        patch = await lazy.propose(USER, "file:notes/a.md", "hello\n", "A note", "chat")
        assert "+hello" in (await lazy.diff(patch.id)).text
        assert (await lazy.accept(patch.id, USER)).status == "merged"
        with pytest.raises(NotFound):  # the service's refusals come through as they are
            await lazy.history(USER, "todo")
    finally:
        await lazy.stop()
    assert lazy.state == "stopped"


async def test_a_press_before_the_mirror_observes_reaches_main(
    env: Env, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = await todo_mirrored(env)
    before = messages(path)

    gate = gate_service_start(monkeypatch)
    panels = await env.start_panels()
    lazy = LazyWorkspaces(env.build)
    await lazy.start()
    try:
        history = asyncio.create_task(lazy.history(USER, "todo"))
        outcome = await panels.call_tool("todo", "add_item", {"text": "early"}, user_id=USER)
        assert outcome.ok
        await panels.create(template="notes", owner="bob")  # a new owner, also meanwhile
        await asyncio.sleep(0.05)
        assert panels.observer is None  # nothing noted these changes
        assert not history.done() and messages(path) == before

        gate.set()
        await lazy.ready()
        # The catch-up read the store: the press is on main (under the catch-up's
        # message, the mirror never saw it), and so is bob's panel.
        assert messages(path)[0] == "Mirror panel(s) todo from the runtime"
        assert state_on_main(path, "todo") == {"items": [{"text": "early", "done": False}]}
        assert (await history)[0].message == "Mirror panel(s) todo from the runtime"
        bob = (await lazy.service()).workspace_path("bob")
        assert state_on_main(bob, "notes") == panels.get("notes").state
        # From now on the mirror observes: a press keeps its own message.
        await panels.call_tool("todo", "add_item", {"text": "later"}, user_id=USER)
        pressed = f"todo: add_item(text='later') by {USER}"
        await eventually(lambda: head_message(path) == pressed, "the worker commits the press")
    finally:
        await lazy.stop()


@pytest.mark.parametrize("broken", ["import", "build"])
async def test_a_failed_load_refuses_operations_and_keeps_the_panels(
    env: Env, monkeypatch: pytest.MonkeyPatch, broken: str
) -> None:
    def build() -> WorkspaceService:
        raise RuntimeError("the disk is on fire")

    if broken == "import":
        monkeypatch.setattr(lazy_module, "SERVICE_MODULE", "nexflow.workspace.no_such_module")
    panels = await env.start_panels()
    lazy = LazyWorkspaces(env.build if broken == "import" else build)
    with capture_logs() as logs:
        await lazy.start()
        with pytest.raises(Unavailable) as refused:
            await lazy.ready()
    assert refused.value.code == "unavailable"
    assert "could not start" in refused.value.message
    assert "fire" not in refused.value.message and "no_such" not in refused.value.message
    failed = [e for e in logs if e["event"] == "workspaces_start_failed"]
    assert failed and failed[0]["log_level"] == "error" and failed[0]["exc_info"] is True

    calls: list[Callable[[], Awaitable[object]]] = [
        lambda: lazy.patches(USER),
        lambda: lazy.propose(USER, "file:notes/a.md", "a", "A", "chat"),
        lambda: lazy.sync(USER, "todo"),
        lazy.service,
    ]
    for call in calls:
        with pytest.raises(Unavailable):
            await call()
    await panels.create(template="todo", owner=USER)  # the gateway is still usable
    outcome = await panels.call_tool("todo", "add_item", {"text": "x"}, user_id=USER)
    assert outcome.ok and panels.get("todo").state["items"][0]["text"] == "x"
    await lazy.stop()


async def test_stop_cancels_a_load_still_running(env: Env, monkeypatch: pytest.MonkeyPatch) -> None:
    gate_service_start(monkeypatch)  # never released
    panels = await env.start_panels()
    lazy = LazyWorkspaces(env.build)
    await lazy.start()
    waiting = asyncio.create_task(lazy.patches())
    await asyncio.sleep(0.05)
    await asyncio.wait_for(lazy.stop(), 5)
    with pytest.raises(Unavailable, match="not running"):
        await waiting
    with pytest.raises(Unavailable, match="not running"):
        await lazy.ready()
    assert panels.observer is None
