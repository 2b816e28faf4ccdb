"""Two replicas on one Postgres, at the level of their storage and leases: a session's
lease keeps its turns on one replica, a stale holder's commit is fenced off, the sweeper
moves a dead replica's sessions on, and outbox rows are claimed by one replica at a time
in chat order. On SQLite the leases live in memory and cost no round trip."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from nexflow.bus.events import InboundEvent, TextOut
from nexflow.gateway.replicas import SessionLeases
from nexflow.storage import SQLStorage
from nexflow.storage.base import NewMessage
from nexflow.storage.engine import PostgresEngine
from nexflow.storage.repo_leases import FenceLost


@pytest.fixture
async def pair(pg_url: str) -> AsyncIterator[tuple[SQLStorage, SQLStorage]]:
    a, b = SQLStorage(PostgresEngine(pg_url)), SQLStorage(PostgresEngine(pg_url))
    await a.open()
    await b.open()
    yield a, b
    await a.close()
    await b.close()


async def _turn(store: SQLStorage, session_id: str, text: str) -> int:
    event = InboundEvent(
        channel="web", chat_id=session_id, sender_id="u", message=text, session_id=session_id
    )
    inbox_id, duplicate = await store.accept(event)
    assert not duplicate
    return inbox_id


async def _session(store: SQLStorage) -> str:
    user = await store.create_user("u", "owner", "web", "u")
    return (await store.ensure_session(None, user, "web", "web")).id


def _nothing(_: str, __: list[int]) -> int:
    return 0


def _idle(_: str) -> bool:
    return False


def _reply(session_id: str, text: str) -> TextOut:
    return TextOut(channel="web", chat_id=session_id, session_id=session_id, text=text)


async def test_one_replica_holds_a_session_and_settles_what_others_accepted(
    pair: tuple[SQLStorage, SQLStorage],
) -> None:
    a_store, b_store = pair
    a, b = SessionLeases(a_store, "a"), SessionLeases(b_store, "b")
    await a.start(_nothing, _idle)
    await b.start(_nothing, _idle)
    try:
        assert a.shared and b.shared
        session = await _session(a_store)
        first = await _turn(a_store, session, "one")
        held = await a.hold(session)
        assert held is not None and held.fence is not None
        assert await b.hold(session) is None  # a runs the session's turns
        # b accepts the next turn meanwhile; a finishes the first and finds it.
        second = await _turn(b_store, session, "two")
        await a_store.complete(first, [NewMessage("user", "one")], _reply(session, "1"))
        assert await a.settle(session) == [second]
        assert a.holding() == [session]  # kept: it has work
        await a_store.complete(second, [NewMessage("user", "two")], _reply(session, "2"))
        assert await a.settle(session) == []
        assert a.holding() == []
        assert await b.hold(session) is not None  # released: anyone may take it now
    finally:
        await a.stop()
        await b.stop()


async def test_a_stale_holder_cannot_commit_over_the_new_one(
    pair: tuple[SQLStorage, SQLStorage],
) -> None:
    a_store, b_store = pair
    a = SessionLeases(a_store, "a", ttl_s=0.3)
    b = SessionLeases(b_store, "b", ttl_s=5.0)
    await a.start(_nothing, _idle)
    await b.start(_nothing, _idle)
    try:
        session = await _session(a_store)
        inbox_id = await _turn(a_store, session, "hello")
        stale = await a.hold(session)
        assert stale is not None
        start = await a_store.begin_turn(inbox_id, 10, 3, fence=stale.fence)
        assert start is not None
        for task in a._tasks:  # a stalls: no renewal, its lease runs out
            task.cancel()
        await asyncio.sleep(0.45)
        fresh = await b.hold(session)
        assert fresh is not None and fresh.fence is not None and stale.fence is not None
        assert fresh.fence.token > stale.fence.token
        with pytest.raises(FenceLost):
            await a_store.complete(
                inbox_id, [NewMessage("user", "hello")], _reply(session, "late"), fence=stale.fence
            )
        assert (await b_store.get_inbox(inbox_id)).status == "running"  # type: ignore[union-attr]
        again = await b_store.begin_turn(inbox_id, 10, 3, fence=fresh.fence)
        assert again is not None and again.item.attempts == 2
        await b_store.complete(
            inbox_id, [NewMessage("user", "hello")], _reply(session, "mine"), fence=fresh.fence
        )
        done = await b_store.outbox_for_inbox(inbox_id)
        assert done is not None and getattr(done.outbound, "text", "") == "mine"
        with pytest.raises(FenceLost):
            await a_store.park_turn(inbox_id, "{}", _approval(session), _reply(session, "?"),
                                    fence=stale.fence)  # fmt: skip
    finally:
        await b.stop()


def _approval(session_id: str):  # type: ignore[no-untyped-def]
    from nexflow.storage.base import ApprovalRecord

    return ApprovalRecord(
        id="ap1", inbox_id=None, user_id="u", channel="web", chat_id=session_id,
        session_id=session_id, title="t", detail="d", call_key="k", status="pending",
        created_at=time.time(), expires_at=time.time() + 60, decided_at=None,
    )  # fmt: skip


async def test_the_sweeper_moves_a_dead_replicas_sessions_on(
    pair: tuple[SQLStorage, SQLStorage],
) -> None:
    a_store, b_store = pair
    dead = SessionLeases(a_store, "dead", ttl_s=0.4)
    await dead.start(_nothing, _idle)
    session = await _session(a_store)
    inbox_id = await _turn(a_store, session, "hello")
    held = await dead.hold(session)
    assert held is not None
    await a_store.begin_turn(inbox_id, 10, 3, fence=held.fence)
    for task in dead._tasks:  # SIGKILL: no renewal, no release
        task.cancel()
    taken: list[tuple[str, list[int]]] = []

    def take(session_id: str, ids: list[int]) -> int:
        taken.append((session_id, ids))
        return len(ids)

    live = SessionLeases(b_store, "live", sweep_s=0.1)
    await live.start(take, _idle)
    try:
        assert await live.sweep(take, _idle) == 0  # the lease is still live
        started = time.monotonic()
        for _ in range(100):  # the sweep loop runs in the background: watch it
            if taken:
                break
            await asyncio.sleep(0.05)
        assert taken == [(session, [inbox_id])]
        assert live.holding() == [session]
        assert time.monotonic() - started < 2.0
    finally:
        await live.stop()


async def test_a_busy_session_is_not_swept_and_fresh_turns_are_left_to_their_replica(
    pair: tuple[SQLStorage, SQLStorage],
) -> None:
    a_store, _ = pair
    live = SessionLeases(a_store, "live", sweep_s=5.0)
    await live.start(_nothing, _idle)
    try:
        session = await _session(a_store)
        await _turn(a_store, session, "fresh")
        assert await live.sweep(lambda s, ids: len(ids), _idle) == 0  # accepted just now
        live.sweep_s = 0.0
        assert await live.sweep(lambda s, ids: len(ids), lambda s: True) == 0  # queued here
        assert await live.sweep(lambda s, ids: len(ids), _idle) == 1
    finally:
        await live.stop()


async def test_outbox_rows_are_claimed_by_one_replica_in_chat_order(
    pair: tuple[SQLStorage, SQLStorage],
) -> None:
    a, b = pair
    a.outbox_claim_s = b.outbox_claim_s = 0.5
    a1 = await a.enqueue(TextOut(channel="tg", chat_id="A", text="1"))
    a2 = await a.enqueue(TextOut(channel="tg", chat_id="A", text="2"))
    now = time.time()
    assert [i.id for i in await a.claim_due_outbox(now, 1)] == [a1]
    a3 = await b.enqueue(TextOut(channel="tg", chat_id="A", text="3"))
    c1 = await b.enqueue(TextOut(channel="tg", chat_id="C", text="x"))
    # b takes nothing of chat A while a holds its head, and chat C at once.
    assert [i.id for i in await b.claim_due_outbox(time.time(), 10)] == [c1]
    assert await b.claim_due_outbox(time.time(), 10) == []  # claimed: not twice
    await b.mark_delivered(c1)
    await a.mark_delivered(a1)
    assert [i.id for i in await b.claim_due_outbox(time.time(), 10)] == [a2, a3]
    # b gives a3 back unattempted; a dies holding nothing; b's claim on a2 runs out.
    await b.claim_outbox([a3], time.time())
    assert await a.claim_due_outbox(time.time(), 10) == []  # a2 ahead, still claimed
    await asyncio.sleep(0.6)
    assert [i.id for i in await a.claim_due_outbox(time.time(), 10)] == [a2, a3]


async def test_concurrent_claims_never_hand_out_a_row_twice(
    pair: tuple[SQLStorage, SQLStorage],
) -> None:
    a, b = pair
    ids = [
        await a.enqueue(TextOut(channel="tg", chat_id=f"c{n % 7}", text=str(n))) for n in range(60)
    ]
    got: list[int] = []
    for _ in range(10):
        rounds = await asyncio.gather(
            a.claim_due_outbox(time.time(), 8), b.claim_due_outbox(time.time(), 8)
        )
        for items in rounds:
            got += [i.id for i in items]
            for i in items:
                await a.mark_delivered(i.id)
    assert sorted(got) == ids  # each once
    per_chat: dict[str, list[int]] = {}
    for i in got:
        per_chat.setdefault(f"c{(i - ids[0]) % 7}", []).append(i)
    assert all(v == sorted(v) for v in per_chat.values())


async def test_on_sqlite_leases_are_in_memory(tmp_path: Path) -> None:
    store = SQLStorage(tmp_path / "nexflow.db")
    await store.open()
    calls = 0
    real = store.engine.run

    async def counting(fn):  # type: ignore[no-untyped-def]
        nonlocal calls
        calls += 1
        return await real(fn)

    leases = SessionLeases(store, "one")
    try:
        await leases.start(_nothing, _idle)
        assert not leases.shared and leases._tasks == []
        store.engine.run = counting  # type: ignore[method-assign]
        held = await leases.hold("s")
        assert held is not None and held.fence is None
        assert await leases.settle("s") == []
        assert calls == 0  # no database round trip on one process
        started = time.perf_counter()
        for _ in range(10_000):
            await leases.hold("s")
            await leases.settle("s")
        per_turn_us = (time.perf_counter() - started) / 10_000 * 1e6
        assert per_turn_us < 50, per_turn_us
    finally:
        store.engine.run = real  # type: ignore[method-assign]
        await leases.stop()
        await store.close()
