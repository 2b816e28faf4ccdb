"""Reminders on a scaled-out deployment: several ReminderServices on one real Postgres.

Each service stands for one process (a gateway, or a worker's paused service) with its
own job store connection on the shared ``reminder_jobs`` table. What is checked:

- a reminder added through A fires on B after A stopped, although B knew of no job when
  it was added (B finds it by its periodic look, ``replicas.scheduler_wake_s``);
- with both running, every reminder fires exactly once;
- a paused (worker) service adds, lists and cancels, never fires; a running one fires
  what it added, once, with the step's idempotency key honoured.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import UTC, timedelta

import pytest

from nexflow.tasks import ReminderService, ReminderTarget, reminder_tools
from nexflow.tools.base import ToolContext

WAKE_S = 1.0  # the services' periodic look, short to keep the tests quick
SLACK_S = 1.5  # a loaded machine's scheduling delay on top of it

Sent = tuple[str, str, str, str]


class Inbox:
    """A ``deliver`` callback that records what was sent, when, and wakes waiters (of
    ``changed``, which several inboxes may share)."""

    def __init__(self, changed: asyncio.Condition | None = None) -> None:
        self.sent: list[Sent] = []
        self.at: list[float] = []
        self._changed = changed or asyncio.Condition()

    async def __call__(self, channel: str, chat_id: str, session_id: str, text: str) -> None:
        async with self._changed:
            self.sent.append((channel, chat_id, session_id, text))
            self.at.append(time.time())
            self._changed.notify_all()

    async def wait_for(self, count: int, within: float) -> None:
        async with asyncio.timeout(within), self._changed:
            await self._changed.wait_for(lambda: len(self.sent) >= count)


def target(user: str) -> ReminderTarget:
    return ReminderTarget(user, "telegram", f"chat-{user}", f"s-{user}")


def texts(*inboxes: Inbox) -> list[str]:
    return sorted(sent[3] for inbox in inboxes for sent in inbox.sent)


Make = Callable[..., Awaitable[ReminderService]]


@pytest.fixture
async def make(pg_url: str) -> AsyncIterator[Make]:
    """Build started services on the test's Postgres schema; all stopped at the end."""
    made: list[ReminderService] = []

    async def build(inbox: Inbox, *, paused: bool = False) -> ReminderService:
        svc = ReminderService(pg_url, inbox, timezone=UTC, wake_s=WAKE_S, paused=paused)
        await svc.start()
        await svc.ready()  # one at a time: the first one creates the table
        made.append(svc)
        return svc

    yield build
    for svc in made:
        await svc.stop()


async def test_a_reminder_added_on_a_stopped_replica_fires_on_another(make: Make) -> None:
    """B starts before the reminder exists and has no job of its own, so APScheduler
    alone would sleep forever; the periodic look finds it (fails without it)."""
    inbox_a, inbox_b = Inbox(), Inbox()
    a = await make(inbox_a)
    b = await make(inbox_b)
    added = await a.add_in(target("ana"), "stand up", timedelta(seconds=2))
    assert added.next_run is not None
    due = added.next_run.timestamp()
    await a.stop()  # before it is due: the row stays in the shared table
    await inbox_b.wait_for(1, within=2 + WAKE_S + SLACK_S + 1)
    assert texts(inbox_b) == ["⏰ Reminder: stand up"]
    assert inbox_b.sent[0][:3] == ("telegram", "chat-ana", "s-ana")
    assert inbox_b.at[0] - due <= WAKE_S + SLACK_S
    await asyncio.sleep(WAKE_S * 2)  # no second fire, and the one-shot is gone
    assert len(inbox_b.sent) == 1 and inbox_a.sent == []
    assert await b.list_for("ana") == []


async def test_two_running_replicas_fire_each_reminder_once(make: Make) -> None:
    changed = asyncio.Condition()
    inbox_a, inbox_b = Inbox(changed), Inbox(changed)
    a = await make(inbox_a)
    b = await make(inbox_b)
    for i in range(6):
        svc = a if i % 2 == 0 else b
        await svc.add_in(target(f"u{i}"), f"note {i}", timedelta(seconds=1.5))
    async with asyncio.timeout(1.5 + WAKE_S + SLACK_S + 2), changed:
        await changed.wait_for(lambda: len(inbox_a.sent) + len(inbox_b.sent) >= 6)
    await asyncio.sleep(WAKE_S * 2)  # long enough for a duplicate to show up
    assert texts(inbox_a, inbox_b) == [f"⏰ Reminder: note {i}" for i in range(6)]


async def test_a_paused_service_adds_and_a_running_one_fires(make: Make) -> None:
    """A worker's service: reminder_add with a flow step's key adds once, list and
    cancel work, nothing fires there, not even alone; a gateway's fires it once."""
    worker_inbox, gateway_inbox = Inbox(), Inbox()
    worker = await make(worker_inbox, paused=True)
    add, list_, cancel = reminder_tools(worker)
    step = ToolContext(
        user_id="ana",
        session_id="s-ana",
        channel="telegram",
        chat_id="chat-ana",
        idempotency_key="run1:remind:1",
    )
    first = await add.run({"text": "water the plants", "in_minutes": 1.2 / 60}, step)
    again = await add.run({"text": "water the plants", "in_minutes": 1.2 / 60}, step)
    assert first.data is not None and again.data is not None
    assert again.data["id"] == first.data["id"]  # the step ran twice, one reminder
    plain = ToolContext(user_id="ana", session_id="s-ana", channel="telegram", chat_id="chat-ana")
    dropped = await add.run({"text": "cancelled", "in_minutes": 1.2 / 60}, plain)
    assert dropped.data is not None
    await cancel.run({"id": dropped.data["id"]}, plain)
    listed = await list_.run({}, plain)
    assert listed.data is not None
    assert [r["id"] for r in listed.data["reminders"]] == [first.data["id"]]
    await asyncio.sleep(1.2 + WAKE_S + 0.5)  # due and past: the paused one holds still
    assert worker_inbox.sent == []
    assert [r.id for r in await worker.list_for("ana")] == [first.data["id"]]
    await make(gateway_inbox)  # a gateway starts: the overdue reminder fires there
    await gateway_inbox.wait_for(1, within=WAKE_S + SLACK_S + 1)
    await asyncio.sleep(WAKE_S * 2)
    assert texts(gateway_inbox) == ["⏰ Reminder: water the plants"]
    assert worker_inbox.sent == [] and await worker.list_for("ana") == []


async def test_a_worker_reminder_fires_on_a_gateway_running_all_along(make: Make) -> None:
    """The gateway was idle (no job) when the worker added one: its periodic look
    finds it and fires it once, within the wake interval of its time."""
    worker_inbox, gateway_inbox = Inbox(), Inbox()
    gateway = await make(gateway_inbox)
    worker = await make(worker_inbox, paused=True)
    added = await worker.add_in(target("bob"), "call back", timedelta(seconds=1.5))
    assert added.next_run is not None
    await gateway_inbox.wait_for(1, within=1.5 + WAKE_S + SLACK_S + 1)
    assert gateway_inbox.at[0] - added.next_run.timestamp() <= WAKE_S + SLACK_S
    await asyncio.sleep(WAKE_S * 2)
    assert texts(gateway_inbox) == ["⏰ Reminder: call back"] and worker_inbox.sent == []
    assert await gateway.list_for("bob") == []
