"""ReminderService and the reminder tools on a real APScheduler with the SQLite job store."""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from nexflow.storage.engine import SQLiteConn
from nexflow.storage.migrations import migrate
from nexflow.tasks import (
    ReminderInvalid,
    ReminderNotFound,
    ReminderRefused,
    ReminderService,
    ReminderTarget,
    reminder_tools,
)
from nexflow.tools.base import ToolContext, ToolError

Sent = tuple[str, str, str, str]


class Inbox:
    """A ``deliver`` callback that records what was sent and wakes waiters."""

    def __init__(self) -> None:
        self.sent: list[Sent] = []
        self._changed = asyncio.Condition()

    async def __call__(self, channel: str, chat_id: str, session_id: str, text: str) -> None:
        async with self._changed:
            self.sent.append((channel, chat_id, session_id, text))
            self._changed.notify_all()

    async def wait_for(self, count: int, within: float = 3.0) -> list[Sent]:
        async with asyncio.timeout(within), self._changed:
            await self._changed.wait_for(lambda: len(self.sent) >= count)
        return self.sent


def ctx(user: str, chat: str = "c1") -> ToolContext:
    return ToolContext(user_id=user, session_id=f"s-{user}", channel="web", chat_id=chat)


def target(user: str) -> ReminderTarget:
    return ReminderTarget(user, "telegram", f"chat-{user}", f"s-{user}")


@pytest.fixture
def db(tmp_path: Path) -> Path:
    path = tmp_path / "nexflow.db"
    conn = sqlite3.connect(path, isolation_level=None)
    migrate(SQLiteConn(conn))  # what storage.open() does in the gateway
    conn.close()
    return path


@pytest.fixture
def inbox() -> Inbox:
    return Inbox()


@pytest.fixture
async def service(db: Path, inbox: Inbox) -> AsyncIterator[ReminderService]:
    svc = ReminderService(db, inbox, timezone=UTC)
    await svc.start()
    yield svc
    await svc.stop()


async def test_tool_reminder_fires_to_its_chat(service: ReminderService, inbox: Inbox) -> None:
    add, list_, _ = reminder_tools(service)
    result = await add.run({"text": "stretch", "in_minutes": 0.005}, ctx("ana", "chat-9"))
    assert result.data is not None and result.data["kind"] == "once"
    listed = await list_.run({}, ctx("ana"))
    assert result.data["id"] in listed.content
    sent = await inbox.wait_for(1)
    assert sent == [("web", "chat-9", "s-ana", "⏰ Reminder: stretch")]
    assert (await service.list_for("ana")) == []  # a fired one-shot is gone


async def test_at_with_timezone_and_past_time(service: ReminderService) -> None:
    add = reminder_tools(service)[0]
    future = (datetime.now(UTC) + timedelta(days=1)).astimezone().replace(tzinfo=None)
    result = await add.run(
        {"text": "call", "at": future.isoformat(timespec="minutes"), "timezone": "Asia/Tokyo"},
        ctx("ana"),
    )
    assert result.data is not None and result.data["timezone"] == "Asia/Tokyo"
    assert result.data["next_run"].endswith("+09:00")
    with pytest.raises(ToolError, match="in the past"):
        await add.run({"text": "x", "at": "2001-01-01T00:00"}, ctx("ana"))
    with pytest.raises(ToolError, match="unknown time zone"):
        await add.run({"text": "x", "in_minutes": 5, "timezone": "Mars/Base"}, ctx("ana"))
    with pytest.raises(ToolError, match="exactly one"):
        await add.run({"text": "x", "in_minutes": 5, "cron": "* * * * *"}, ctx("ana"))
    with pytest.raises(ToolError, match="between"):
        await add.run({"text": "x", "in_minutes": float("inf")}, ctx("ana"))
    with pytest.raises(ToolError, match="5 fields"):
        await add.run({"text": "x", "cron": "* * * * * *"}, ctx("ana"))  # no seconds for the model


async def test_cron_weekdays_follow_crontab(service: ReminderService) -> None:
    sunday = await service.add_cron(target("ana"), "weekly", "0 9 * * 0")
    assert sunday.next_run is not None and sunday.next_run.weekday() == 6
    weekdays = await service.add_cron(target("ana"), "standup", "30 9 * * 1-5", timezone="UTC")
    assert weekdays.next_run is not None and weekdays.next_run.weekday() < 5
    with pytest.raises(ReminderInvalid):
        await service.add_cron(target("ana"), "bad", "61 * * * *")


async def test_cron_fires_repeatedly(service: ReminderService, inbox: Inbox) -> None:
    r = await service.add_cron(target("bo"), "tick", "* * * * * *", allow_seconds=True)
    sent = await inbox.wait_for(2, within=3.5)
    assert [s[3] for s in sent[:2]] == ["⏰ Reminder: tick"] * 2
    assert [x.id for x in await service.list_for("bo")] == [r.id]  # still scheduled


async def test_cancel_and_isolation_between_users(service: ReminderService, inbox: Inbox) -> None:
    add, list_, cancel = reminder_tools(service)
    mine = await add.run({"text": "mine", "in_minutes": 0.01}, ctx("ana"))
    theirs = await add.run({"text": "theirs", "in_minutes": 60}, ctx("bo"))
    assert mine.data is not None and theirs.data is not None
    assert "theirs" not in (await list_.run({}, ctx("ana"))).content
    with pytest.raises(ToolError, match="no reminder"):
        await cancel.run({"id": theirs.data["id"]}, ctx("ana"))
    assert [r.text for r in await service.list_for("bo")] == ["theirs"]  # untouched
    done = await cancel.run({"id": mine.data["id"]}, ctx("ana"))
    assert "Cancelled" in done.content
    assert (await list_.run({}, ctx("ana"))).content == "You have no reminders."
    with pytest.raises(ReminderNotFound):
        await service.cancel("ana", mine.data["id"])
    await asyncio.sleep(0.8)  # past its time: it must not fire
    assert inbox.sent == []


async def test_restart_fires_missed_one_shot_once(db: Path) -> None:
    first = Inbox()
    a = ReminderService(db, first, timezone=UTC)
    await a.start()
    r = await a.add_in(target("ana"), "water the plants", timedelta(seconds=0.3))
    await a.stop()
    await asyncio.sleep(0.5)  # the gateway is down when it is due
    second = Inbox()
    b = ReminderService(db, second, timezone=UTC, late_after=timedelta(0))
    await b.start()
    try:
        sent = await second.wait_for(1)
        await asyncio.sleep(0.3)
        assert len(sent) == 1 and first.sent == []
        channel, chat, session, text = sent[0]
        assert (channel, chat, session) == ("telegram", "chat-ana", "s-ana")
        assert text.startswith("⏰ Reminder (late: it was due ") and "water the plants" in text
        assert await b.list_for("ana") == []
    finally:
        await b.stop()
    c = ReminderService(db, second, timezone=UTC)  # a third start does not fire it again
    await c.start()
    await asyncio.sleep(0.2)
    await c.stop()
    assert len(second.sent) == 1 and r.id


async def test_pending_reminders_survive_restart(db: Path, inbox: Inbox) -> None:
    a = ReminderService(db, inbox, timezone=UTC)
    await a.start()
    once = await a.add_in(target("ana"), "later", timedelta(hours=2))
    cron = await a.add_cron(target("ana"), "daily", "0 8 * * *", timezone="Europe/Berlin")
    await a.stop()
    b = ReminderService(db, inbox, timezone=UTC)
    await b.start()
    try:
        listed = {r.id: r for r in await b.list_for("ana")}
        assert set(listed) == {once.id, cron.id}
        assert listed[cron.id].timezone == "Europe/Berlin"
        assert listed[once.id].next_run == once.next_run
    finally:
        await b.stop()


async def test_limits_and_budget_hook(db: Path, inbox: Inbox) -> None:
    calls: list[tuple[str, str]] = []

    async def budget(user_id: str, action: str) -> str | None:
        calls.append((user_id, action))
        return "monthly budget used up" if user_id == "broke" else None

    svc = ReminderService(db, inbox, timezone=UTC, budget=budget, max_per_user=2, max_text=20)
    await svc.start()
    try:
        with pytest.raises(ReminderRefused, match="budget"):
            await svc.add_in(target("broke"), "x", timedelta(minutes=1))
        with pytest.raises(ReminderInvalid, match="20 characters"):
            await svc.add_in(target("ana"), "y" * 21, timedelta(minutes=1))
        with pytest.raises(ReminderInvalid, match="empty"):
            await svc.add_in(target("ana"), "   ", timedelta(minutes=1))
        for _ in range(2):
            await svc.add_in(target("ana"), "ok", timedelta(minutes=1))
        with pytest.raises(ReminderRefused, match="already have 2"):
            await svc.add_in(target("ana"), "one too many", timedelta(minutes=1))
        await svc.add_in(target("bo"), "soon", timedelta(seconds=0.1))
        await inbox.wait_for(1)
        assert ("bo", "fire") in calls
    finally:
        await svc.stop()


async def test_failing_deliver_is_logged_not_fatal(
    db: Path, caplog: pytest.LogCaptureFixture
) -> None:
    inbox = Inbox()
    fails = 0

    async def flaky(channel: str, chat_id: str, session_id: str, text: str) -> None:
        nonlocal fails
        fails += 1
        raise OSError("outbox down")

    svc = ReminderService(db, flaky, timezone=UTC)
    await svc.start()
    try:
        await svc.add_in(target("ana"), "a", timedelta(seconds=0.05))
        await asyncio.sleep(0.4)
        assert fails == 1
        assert "delivering reminder" in caplog.text
        svc._deliver = inbox  # the service keeps working after a failed delivery
        await svc.add_in(target("ana"), "b", timedelta(seconds=0.05))
        assert (await inbox.wait_for(1))[0][3] == "⏰ Reminder: b"
    finally:
        await svc.stop()


async def test_a_flow_steps_key_adds_the_reminder_once(service: ReminderService) -> None:
    """A flow step runs at least once: the same key (same user) gives the same reminder;
    another user's same key is another reminder; no key adds one each time."""
    add = reminder_tools(service)[0]
    keyed = ToolContext(
        user_id="ana", session_id="s-ana", channel="web", chat_id="c1", idempotency_key="r1:n:1"
    )
    first = await add.run({"text": "water", "in_minutes": 60}, keyed)
    again = await add.run({"text": "water", "in_minutes": 60}, keyed)
    assert first.data is not None and again.data is not None
    assert again.data["id"] == first.data["id"]
    assert [r.id for r in await service.list_for("ana")] == [first.data["id"]]
    other = ToolContext(
        user_id="bob", session_id="s-bob", channel="web", chat_id="c1", idempotency_key="r1:n:1"
    )
    theirs = await add.run({"text": "water", "in_minutes": 60}, other)
    assert theirs.data is not None and theirs.data["id"] != first.data["id"]
    await add.run({"text": "tea", "in_minutes": 60}, ctx("ana"))
    await add.run({"text": "tea", "in_minutes": 60}, ctx("ana"))
    assert len(await service.list_for("ana")) == 3
