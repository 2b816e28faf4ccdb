"""Usage, budget reservations, statistics and dashboard queries, on SQLite and Postgres
(the ``storage`` fixture runs each test on both); replicas sharing one Postgres
reserve against the same budget."""

from __future__ import annotations

import asyncio
import time

import pytest

from nexflow.bus.events import InboundEvent
from nexflow.storage.base import AuditRecord
from nexflow.storage.engine import PostgresEngine
from nexflow.storage.repo_usage import UsageLimit, UsageRow
from nexflow.storage.sql_storage import SQLStorage

DAY = "2026-11-22"


def limit(n: int, *, strict: bool = False, scope: str = "user", prefix: str = DAY) -> UsageLimit:
    return UsageLimit("daily", scope, prefix, n, strict)


async def test_usage_adds_up_per_day_scope_and_model(storage: SQLStorage) -> None:
    await storage.record_usage("ana", DAY, "user", [UsageRow("m1", 1, 100, 20, 0.5)])
    await storage.record_usage(
        "ana", DAY, "user", [UsageRow("m1", 2, 10, 5, 0.25), UsageRow("m2", 1, 7, 3, 0.0)]
    )
    await storage.record_usage("ana", "2026-11-23", "background", [UsageRow("m1", 1, 1, 1, 0.1)])
    await storage.record_usage("bo", "2026-12-01", "user", [UsageRow("m1", 1, 50, 0, 0.0)])

    assert await storage.used_tokens("ana", "user", DAY) == 145
    assert await storage.used_tokens("ana", "user", "2026-11") == 145
    assert await storage.used_tokens("ana", "background", "2026-11") == 2
    assert await storage.used_tokens("ana", "user", "2026-12") == 0
    assert await storage.usage_by_model("2026-11") == [
        UsageRow("m1", 4, 111, 26, pytest.approx(0.85)),  # type: ignore[arg-type]
        UsageRow("m2", 1, 7, 3, 0.0),
    ]
    assert [r.model for r in await storage.usage_by_model("")] == ["m1", "m2"]


async def test_charges_are_checked_and_charged_together(storage: SQLStorage) -> None:
    assert await storage.reserve_tokens("ana", DAY, "background", 400, 1000, "charge:x") == 400
    assert await storage.reserve_tokens("ana", DAY, "background", 600, 1000, "charge:x") == 1000
    assert await storage.reserve_tokens("ana", DAY, "background", 1, 1000, "charge:x") is None
    assert await storage.used_tokens("ana", "background", DAY) == 1000
    assert await storage.usage_by_model(DAY) == []  # charges are not models


async def test_a_reservation_counts_until_settled_or_expired(storage: SQLStorage) -> None:
    now = time.time()
    first = await storage.reserve_usage("ana", "user", DAY, 600, [limit(1000)], now=now, ttl_s=60)
    assert first.id is not None and first.refused is None
    assert await storage.reserved_tokens("ana", "user") == 600
    # Room left: admitted (past the limit by at most its own reservation) unless strict.
    strict = await storage.reserve_usage(
        "ana", "user", DAY, 600, [limit(1000, strict=True)], now=now, ttl_s=60
    )
    assert strict.id is None and strict.used == 600 and strict.refused == limit(1000, strict=True)
    second = await storage.reserve_usage("ana", "user", DAY, 600, [limit(1000)], now=now, ttl_s=60)
    assert second.id is not None and second.id != first.id
    full = await storage.reserve_usage("ana", "user", DAY, 1, [limit(1000)], now=now, ttl_s=60)
    assert full.id is None and full.used == 1200

    await storage.settle_usage(first.id, "ana", DAY, "user", UsageRow("m", 1, 300, 100, 0.01))
    await storage.settle_usage(second.id, "ana", DAY, "user", None)
    assert await storage.reserved_tokens("ana", "user") == 0
    assert await storage.used_tokens("ana", "user", DAY) == 400

    leaked = await storage.reserve_usage("ana", "user", DAY, 500, [limit(1000)], now=now, ttl_s=5)
    assert leaked.id is not None
    later = await storage.reserve_usage(
        "ana", "user", DAY, 550, [limit(1000, strict=True)], now=now + 10, ttl_s=5
    )
    assert later.id is not None  # the leaked reservation stopped counting
    assert await storage.reserved_tokens("ana", "user") == 550


async def test_replicas_reserving_at_once_never_pass_a_strict_limit(pg_url: str) -> None:
    """Two gateways on one Postgres, four connections each, 48 reservations of 100 tokens
    against 1,000 at once: exactly 10 pass, and each replica sees the other's."""
    replicas = [SQLStorage(PostgresEngine(pg_url, threads=4)) for _ in range(2)]
    for r in replicas:
        await r.open()
    try:
        now = time.time()
        rules = [limit(1000, strict=True)]
        results = await asyncio.gather(
            *(
                replicas[i % 2].reserve_usage("ana", "user", DAY, 100, rules, now=now, ttl_s=60)
                for i in range(48)
            )
        )
        granted = [r.id for r in results if r.id is not None]
        assert len(granted) == len(set(granted)) == 10
        assert all(r.used == 1000 for r in results if r.id is None)
        for r in replicas:
            assert await r.reserved_tokens("ana", "user") == 1000
        # Settling on one replica frees room on the other.
        await replicas[0].settle_usage(granted[0], "ana", DAY, "user", UsageRow("m", 1, 40, 0))
        again = await replicas[1].reserve_usage("ana", "user", DAY, 60, rules, now=now, ttl_s=60)
        assert again.id is not None
        # Another user is not held back by ana's budget.
        other = await replicas[1].reserve_usage("bo", "user", DAY, 1000, rules, now=now, ttl_s=60)
        assert other.id is not None
    finally:
        for r in replicas:
            await r.close()


async def test_replicas_charging_at_once_never_pass_the_limit(pg_url: str) -> None:
    replicas = [SQLStorage(PostgresEngine(pg_url, threads=4)) for _ in range(2)]
    for r in replicas:
        await r.open()
    try:
        totals = await asyncio.gather(
            *(
                replicas[i % 2].reserve_tokens("ana", DAY, "background", 100, 1000, "charge:r")
                for i in range(30)
            )
        )
        assert sorted(t for t in totals if t is not None) == list(range(100, 1001, 100))
        assert await replicas[0].used_tokens("ana", "background", DAY) == 1000
    finally:
        for r in replicas:
            await r.close()


async def _audit(storage: SQLStorage, ana: str = "ana", bo: str = "bo") -> None:
    await storage.audit(
        [
            AuditRecord("tool_call", "web_fetch", "ok", ana, None, {"duration_s": 0.5}),
            AuditRecord("tool_call", "web_fetch", "error", ana, None, {"duration_s": 1.5}),
            AuditRecord("tool_call", "web_fetch", "ok", bo, None, {}),
            AuditRecord("skill_run", "notes", "ran", ana, None, {"duration_ms": 250}),
            AuditRecord("skill_run", "notes", "failed", ana, None, {"duration_ms": 750}),
            AuditRecord("message_in", "telegram", "ok", ana, None, {}),
            AuditRecord("message_in", "telegram", "ok", bo, None, {}),
        ]
    )


async def test_tool_usage_and_invocations(storage: SQLStorage) -> None:
    await _audit(storage)
    mine = await storage.tool_usage("ana")
    assert [(u.kind, u.name, u.calls, u.failures) for u in mine] == [
        ("skill_run", "notes", 2, 1),
        ("tool_call", "web_fetch", 2, 1),
    ]
    assert all(isinstance(u.last_used, float) for u in mine)
    everyone = await storage.tool_usage(None)
    assert [(u.name, u.calls) for u in everyone] == [("notes", 2), ("web_fetch", 3)]

    day = time.strftime("%Y-%m-%d", time.gmtime())
    rows = await storage.invocations(None, 0.0)
    assert [(r.day, r.kind, r.name, r.calls, r.failures) for r in rows] == [
        (day, "skill_run", "notes", 2, 1),
        (day, "tool_call", "web_fetch", 3, 1),
    ]
    notes, fetch = rows
    assert (notes.mean_s, notes.p95_s) == (0.5, 0.75)  # milliseconds become seconds
    assert (fetch.mean_s, fetch.p95_s) == (1.0, 1.5)  # the call without a duration is left out
    only = await storage.invocations("ana", 0.0, name="web_fetch")
    assert [(r.name, r.calls) for r in only] == [("web_fetch", 2)]
    assert await storage.invocations(None, time.time() + 60) == []


async def test_activity_backlog_and_dashboard(storage: SQLStorage) -> None:
    ana = await storage.create_user("Ana", "user", "telegram", "1")
    bo = await storage.create_user("Bo", "admin", "web", "bo")
    session = await storage.chat_session(ana, "telegram", "1")
    await storage.accept(
        InboundEvent(
            channel="telegram",
            chat_id="1",
            sender_id="1",
            message="hi",
            user_id=ana,
            session_id=session.id,
            external_id="m1",
        )
    )
    await _audit(storage, ana, bo)
    await storage.record_usage(ana, DAY, "user", [UsageRow("m1", 2, 100, 20, 0.1234567)])
    await storage.record_usage(ana, DAY, "user", [UsageRow("charge:reminder", 1, 5, 0, 0.0)])
    await storage.record_usage(bo, "2026-11-01", "user", [UsageRow("m2", 1, 1, 1, 0.0)])

    act = await storage.activity(None, 0.0, "2026-11-20")
    assert (act.turns, act.tool_calls, act.tool_failures, act.skill_runs, act.skill_failures) == (
        2,
        3,
        1,
        2,
        1,
    )
    assert [(m.model, m.calls, m.tokens_in, m.tokens_out) for m in act.models] == [
        ("m1", 2, 100, 20)
    ]
    mine = await storage.activity(ana, 0.0, "")
    assert (mine.messages_in, mine.messages_out, mine.turns) == (0, 0, 1)
    assert await storage.backlog(ana, time.time()) == await storage.backlog(None, time.time())

    counts = await storage.queue_counts(None)
    assert counts.inbox == {"pending": 1} and counts.outbox == {}
    assert (await storage.queue_counts(bo)).inbox == {}
    days = await storage.usage_per_day(None, "2026-11-01")
    assert [(d.day, d.model, d.calls, d.tokens_in, d.tokens_out) for d in days] == [
        ("2026-11-01", "m2", 1, 1, 1),
        (DAY, "m1", 2, 100, 20),
    ]
    assert days[1].cost_usd == round(0.1234567, 6)
    users = {u.id: u for u in await storage.users_overview("2026-11-20")}
    assert users[ana].sessions == 1 and users[ana].tokens_in == 105 and users[ana].calls == 3
    assert [(i.channel, i.external_id) for i in users[ana].identities] == [("telegram", "1")]
    assert users[bo].sessions == 0 and users[bo].calls == 0 and users[bo].role == "admin"
