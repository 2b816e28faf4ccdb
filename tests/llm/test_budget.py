"""Budgets on the real SQLite usage table; the background budget through the real reminder
service (APScheduler, a cron line firing every second)."""

import asyncio
from datetime import UTC, datetime
from pathlib import Path

from nexflow.config.model import BudgetsConfig
from nexflow.llm.budget import Budgets
from nexflow.storage.base import AuditRecord
from nexflow.storage.repo_usage import UsageRow
from nexflow.storage.sql_storage import SQLStorage
from nexflow.tasks import ReminderService, ReminderTarget

NOW = datetime(2026, 11, 22, 10, 0, tzinfo=UTC)


def call(model: str, tokens_in: int, tokens_out: int, outcome: str = "ok") -> AuditRecord:
    data = {"tokens_in": tokens_in, "tokens_out": tokens_out, "cost_usd": 0.001}
    return AuditRecord("llm_call", model, outcome, "ana", "s", data)


async def settled(budgets: Budgets, model: str, tokens_in: int, tokens_out: int) -> None:
    """One model call as the budget gate records it: reserve, then settle with its usage."""
    reservation = await budgets.reserve("ana", "user", tokens_in + tokens_out)
    await budgets.settle(reservation, UsageRow(model, 1, tokens_in, tokens_out, 0.001))


async def test_soft_warning_then_hard_stop(storage: SQLStorage) -> None:
    budgets = Budgets(
        BudgetsConfig(per_user_daily_tokens=1000, soft_warning_ratio=0.8), storage, lambda: NOW
    )
    await settled(budgets, "m", 500, 200)
    check = await budgets.check("ana")
    assert (check.used, check.warn, check.exhausted) == (700, False, False)
    await settled(budgets, "m", 90, 10)
    check = await budgets.check("ana")
    assert (check.percent, check.warn, check.exhausted) == (80, True, False)
    await settled(budgets, "other", 150, 50)
    assert (await budgets.check("ana")).exhausted
    assert not (await budgets.check("bo")).warn  # budgets are per user
    rows = {r.model: r for r in await budgets.today_by_model()}
    assert (rows["m"].calls, rows["m"].tokens, rows["other"].tokens) == (2, 800, 200)


async def test_the_monthly_budget_counts_every_day_of_the_month(storage: SQLStorage) -> None:
    config = BudgetsConfig(per_user_daily_tokens=500, per_user_monthly_tokens=1000)
    days = [datetime(2026, 11, d, tzinfo=UTC) for d in (1, 2, 3)]
    for day in days:
        await settled(Budgets(config, storage, lambda d=day: d), "m", 300, 0)
    check = await Budgets(config, storage, lambda: days[-1]).check("ana")
    assert (check.period, check.used, check.warn, check.exhausted) == ("monthly", 900, True, False)
    december = await Budgets(config, storage, lambda: datetime(2026, 12, 1, tzinfo=UTC)).check(
        "ana"
    )
    assert (december.used, december.warn) == (0, False)


async def test_record_turn_only_counts_a_turns_tokens(storage: SQLStorage) -> None:
    """The gate records every call when it settles; the gateway's record_turn after the turn
    must not count it twice."""
    budgets = Budgets(BudgetsConfig(per_user_daily_tokens=1000), storage, lambda: NOW)
    assert await budgets.record_turn("ana", [call("m", 500, 200), call("m", 9, 9, "error")]) == 700
    assert await budgets.user_tokens("ana") == (0, 0)


async def test_a_runaway_cron_job_stops_at_the_background_budget(
    storage: SQLStorage, tmp_path: Path
) -> None:
    budgets = Budgets(
        BudgetsConfig(background_daily_tokens=250, background_fire_tokens=100), storage
    )
    sent: list[str] = []
    two = asyncio.Event()

    async def deliver(channel: str, chat_id: str, session_id: str, text: str) -> None:
        sent.append(text)
        if len(sent) >= 2:
            two.set()

    reminders = ReminderService(
        tmp_path / "nexflow.db", deliver, timezone=UTC, budget=budgets.reminder_hook
    )
    await reminders.start()
    try:
        target = ReminderTarget("ana", "web", "c", "s")
        await reminders.add_cron(target, "tick", "* * * * * *", allow_seconds=True)
        await asyncio.wait_for(two.wait(), 5)
        await asyncio.sleep(2.2)  # two more seconds of firing: both refused
    finally:
        await reminders.stop()
    assert sent == ["⏰ Reminder: tick"] * 2
    assert await storage.used_tokens("ana", "background", "") == 200  # never past 250
    assert await budgets.reminder_hook("ana", "add") is None  # adding costs nothing
    assert await budgets.today_by_model() == []  # charges are not model calls
