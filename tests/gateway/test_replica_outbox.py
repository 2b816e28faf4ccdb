"""Two replicas' outbox dispatchers on one Postgres: every due row is sent once, in order
per chat, even with slow sends and one chat failing and retrying; a replica that dies
mid-delivery leaves its claim to run out and the row is sent again, once."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator

import pytest
from prometheus_client import CollectorRegistry

from nexflow.bus.events import InboundEvent, Outbound, TextOut
from nexflow.config.model import OutboxConfig
from nexflow.gateway import ConnectorManifest, DeliveryError, OutboxDispatcher
from nexflow.observability.metrics import Metrics
from nexflow.storage import SQLStorage
from nexflow.storage.engine import PostgresEngine


class Recorder:
    """A platform shared by both replicas: what was sent, by whom, in which order."""

    def __init__(self) -> None:
        self.sent: list[tuple[str, str, str]] = []  # (replica, chat, text)
        self.fail_once: set[str] = {"c3 2"}


class Replica:
    manifest = ConnectorManifest("tg", "tests", frozenset({"text"}))

    def __init__(self, name: str, platform: Recorder) -> None:
        self.name = name
        self.platform = platform

    async def start(self) -> None: ...
    async def stop(self) -> None: ...

    async def events(self) -> AsyncIterator[InboundEvent]:
        return
        yield

    async def send(self, out: Outbound) -> None:
        assert isinstance(out, TextOut)
        await asyncio.sleep(0.002)
        if out.text in self.platform.fail_once:
            self.platform.fail_once.discard(out.text)
            raise DeliveryError("HTTP 502", retry_after_s=0.05)
        self.platform.sent.append((self.name, out.chat_id, out.text))


@pytest.fixture
async def pair(pg_url: str) -> AsyncIterator[tuple[SQLStorage, SQLStorage]]:
    a, b = SQLStorage(PostgresEngine(pg_url)), SQLStorage(PostgresEngine(pg_url))
    await a.open()
    await b.open()
    yield a, b
    await a.close()
    await b.close()


def _dispatcher(store: SQLStorage, name: str, platform: Recorder) -> OutboxDispatcher:
    config = OutboxConfig(initial_backoff_s=0.05, max_backoff_s=0.2)
    outbox = OutboxDispatcher(store, config, Metrics(CollectorRegistry()), batch=16)
    outbox.attach("tg", Replica(name, platform))
    return outbox


async def test_two_dispatchers_send_each_row_once_in_chat_order(
    pair: tuple[SQLStorage, SQLStorage],
) -> None:
    platform = Recorder()
    a, b = (_dispatcher(s, n, platform) for s, n in zip(pair, "ab", strict=True))
    a.start()
    b.start()
    try:
        expected = []
        for i in range(30):
            for chat in ("c1", "c2", "c3", "c4"):
                text = f"{chat} {i}"
                expected.append((chat, text))
                await pair[i % 2].enqueue(TextOut(channel="tg", chat_id=chat, text=text))
            (a if i % 2 else b).notify()
        async with asyncio.timeout(20):
            while len(platform.sent) < len(expected):  # noqa: ASYNC110 - both replicas send
                await asyncio.sleep(0.02)
        await asyncio.sleep(0.2)  # nothing more arrives
    finally:
        await a.stop()
        await b.stop()
    assert sorted((c, t) for _, c, t in platform.sent) == sorted(expected)  # each once
    for chat in ("c1", "c2", "c3", "c4"):
        got = [int(t.split()[1]) for _, c, t in platform.sent if c == chat]
        assert got == list(range(30)), (chat, got)
    assert {r for r, _, _ in platform.sent} == {"a", "b"}  # both replicas did send


async def test_a_claim_left_by_a_dead_replica_runs_out_then_the_row_is_sent_once(
    pair: tuple[SQLStorage, SQLStorage],
) -> None:
    dead, live = pair
    dead.outbox_claim_s = 0.3
    first = await dead.enqueue(TextOut(channel="tg", chat_id="c", text="one"))
    await dead.enqueue(TextOut(channel="tg", chat_id="c", text="two"))
    claimed = await dead.claim_due_outbox(time.time(), 1)  # then it dies mid-delivery
    assert [i.id for i in claimed] == [first]
    platform = Recorder()
    outbox = _dispatcher(live, "live", platform)
    assert await outbox.deliver_due() == 0  # the dead replica's claim holds the chat
    await asyncio.sleep(0.35)
    assert await outbox.deliver_due() == 2
    assert [t for _, _, t in platform.sent] == ["one", "two"]
    assert await outbox.deliver_due() == 0
