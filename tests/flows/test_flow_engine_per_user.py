"""Per-user concurrency: a user's runs past their limit wait in the queue (stored, so a
restart keeps them) while other users' runs start at once."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from flows_support import FakeHost

from nexflow.flows import FlowEngine, load_flow_text
from nexflow.flows import engine as engine_module
from nexflow.flows.engine import TERMINAL

# an approval holds its run (and its slot) until answered
HOLD = "name: hold\nnodes:\n  ask: {type: approval, title: 'go?'}\n"
QUICK = "name: quick\nnodes:\n  t: {type: tool, tool: work}\n"


def engine_at(home: Path, host: FakeHost) -> FlowEngine:
    return FlowEngine(
        host,
        home=home,
        concurrency=4,
        per_user_concurrency=2,
        queue_poll_s=0.05,
        notify_poll_s=0.05,
    )


async def states(engine: FlowEngine, runs: list[str], want: list[str]) -> dict[str, str]:
    """The runs' statuses once they are ``want`` (sorted), or after 15 s."""
    got: dict[str, str] = {}
    for _ in range(150):
        got = {r: (await engine.status(r)).status for r in runs}
        if sorted(got.values()) == sorted(want):
            break
        await asyncio.sleep(0.1)
    return got


async def test_per_user_limit_queues_a_users_third_run_but_not_others(tmp_path: Path) -> None:
    host = FakeHost()
    engine = engine_at(tmp_path / "h", host)
    hold = load_flow_text(HOLD)
    try:
        alice = [await engine.start(hold, {}, owner="alice") for _ in range(3)]
        got = await states(engine, alice, ["queued", "waiting", "waiting"])
        assert sorted(got.values()) == ["queued", "waiting", "waiting"], got
        (queued,) = [r for r, s in got.items() if s == "queued"]
        # bob is not held up by alice's queue (global concurrency 4 has room)
        bob = await engine.start(load_flow_text(QUICK), {}, owner="bob")
        assert (await engine.wait(bob, timeout_s=10, states=TERMINAL)).status == "completed"
        await asyncio.sleep(0.3)  # several queue polls
        assert (await engine.status(queued)).status == "queued"
        assert len(host.asked) == 2
        # one of alice's finishes: the waiting one starts
        first = next(r for r, s in got.items() if s == "waiting")
        await engine.answer(first, "ask", True, by="alice")
        assert (await engine.wait(first, timeout_s=10, states=TERMINAL)).status == "completed"
        assert (await engine.wait(queued, timeout_s=10)).status == "waiting"
    finally:
        await engine.close()


async def test_per_user_queue_survives_a_restart(tmp_path: Path) -> None:
    host = FakeHost()
    engine = engine_at(tmp_path / "h", host)
    hold = load_flow_text(HOLD)
    try:
        alice = [await engine.start(hold, {}, owner="alice") for _ in range(3)]
        got = await states(engine, alice, ["queued", "waiting", "waiting"])
        assert sorted(got.values()) == ["queued", "waiting", "waiting"], got
    finally:
        await engine.close()
    (queued,) = [r for r, s in got.items() if s == "queued"]
    engine = engine_at(tmp_path / "h", host)
    try:
        # the two holding runs resume and keep their slots; the third still waits
        after = await states(engine, alice, ["queued", "waiting", "waiting"])
        await asyncio.sleep(0.3)
        after = {r: (await engine.status(r)).status for r in alice}
        assert after == got, after
        for run in alice:
            if run != queued:
                await engine.answer(run, "ask", True, by="alice")
        assert (await engine.wait(queued, timeout_s=10)).status == "waiting"
    finally:
        await engine.close()


async def test_runs_queued_before_the_queue_was_partitioned_still_start(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An older gateway queued runs on the unpartitioned queue, without an owner key; after
    an upgrade the legacy queue still takes them (a partitioned queue never would)."""
    host = FakeHost()
    monkeypatch.setattr(engine_module, "QUEUE", engine_module.LEGACY_QUEUE)
    old = FlowEngine(host, home=tmp_path / "h", concurrency=1, queue_poll_s=0.05)
    try:
        held = await old.start(load_flow_text(HOLD), {}, owner="alice")
        assert (await old.wait(held, timeout_s=10)).status == "waiting"
        behind = await old.start(load_flow_text(QUICK), {}, owner="alice")
        await asyncio.sleep(0.3)
        assert (await old.status(behind)).status == "queued"
    finally:
        await old.close()
    monkeypatch.undo()
    engine = engine_at(tmp_path / "h", host)
    try:
        assert (await engine.wait(behind, timeout_s=15, states=TERMINAL)).status == "completed"
    finally:
        await engine.close()
