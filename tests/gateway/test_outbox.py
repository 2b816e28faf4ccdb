"""The outbox dispatcher with a connector that fails the way platforms do."""

import asyncio
import time
from collections.abc import AsyncIterator

import pytest
from prometheus_client import CollectorRegistry

from nexflow.bus.events import InboundEvent, Outbound, TextOut
from nexflow.config.model import OutboxConfig
from nexflow.gateway import ConnectorManifest, DeliveryError, OutboxDispatcher
from nexflow.gateway import outbox as outbox_module
from nexflow.observability.metrics import Metrics
from nexflow.storage import SQLStorage


class FlakyConnector:
    """Fails the first ``failures`` sends (retryable), or every send of a blocked chat."""

    manifest = ConnectorManifest("flaky", "tests", frozenset({"text"}))

    def __init__(self, failures: int = 0, blocked: frozenset[str] = frozenset()) -> None:
        self.failures = failures
        self.blocked = blocked
        self.delivered: list[tuple[str, str]] = []

    async def start(self) -> None: ...
    async def stop(self) -> None: ...

    async def events(self) -> AsyncIterator[InboundEvent]:
        return
        yield

    async def send(self, out: Outbound) -> None:
        assert isinstance(out, TextOut)
        if out.chat_id in self.blocked:
            raise DeliveryError("bot was blocked by the user", retryable=False)
        if self.failures:
            self.failures -= 1
            raise DeliveryError("HTTP 502 from platform", retry_after_s=0.05)
        self.delivered.append((out.chat_id, out.text))


async def drain(storage: SQLStorage) -> None:
    async with asyncio.timeout(5):
        while await storage.next_outbox_due() is not None:  # noqa: ASYNC110 - polling the DB
            await asyncio.sleep(0.02)


async def test_transient_failures_are_retried_in_order(storage: SQLStorage) -> None:
    connector = FlakyConnector(failures=3)
    metrics = Metrics(CollectorRegistry())
    outbox = OutboxDispatcher(storage, OutboxConfig(), metrics)
    outbox.attach("flaky", connector)
    for i in range(4):
        await storage.enqueue(TextOut(channel="flaky", chat_id="A", text=f"a{i}"))
    await storage.enqueue(TextOut(channel="flaky", chat_id="B", text="b0"))
    outbox.start()
    outbox.notify()
    await drain(storage)
    await outbox.stop()
    assert [t for c, t in connector.delivered if c == "A"] == ["a0", "a1", "a2", "a3"]
    assert ("B", "b0") in connector.delivered
    assert metrics.delivery_failures.labels("flaky", "false")._value.get() == 3


async def test_undeliverable_is_marked_failed_and_audited(storage: SQLStorage) -> None:
    connector = FlakyConnector(blocked=frozenset({"gone"}))
    outbox = OutboxDispatcher(storage, OutboxConfig(), Metrics(CollectorRegistry()))
    outbox.attach("flaky", connector)
    dead = await storage.enqueue(TextOut(channel="flaky", chat_id="gone", text="x"))
    after = await storage.enqueue(TextOut(channel="flaky", chat_id="gone", text="y"))
    assert await outbox.deliver_due() == 0
    item = await storage.get_outbox(dead)
    assert item is not None and item.status == "failed"
    assert item.last_error == "bot was blocked by the user"
    audit = await storage.audit_tail(5, "delivery")
    assert audit[0]["outcome"] == "failed" and "blocked" in audit[0]["data"]["reason"]
    later = await storage.get_outbox(after)
    assert later is not None and later.status == "failed"  # it does not wedge the chat


async def test_connector_not_running_gives_up_after_max_attempts(storage: SQLStorage) -> None:
    config = OutboxConfig(max_attempts=2, initial_backoff_s=0.01, max_backoff_s=0.01)
    outbox = OutboxDispatcher(storage, config, Metrics(CollectorRegistry()))
    oid = await storage.enqueue(TextOut(channel="telegram", chat_id="1", text="x"))
    await outbox.deliver_due()
    await asyncio.sleep(0.02)
    await outbox.deliver_due()
    item = await storage.get_outbox(oid)
    assert item is not None and item.status == "failed" and "not running" in (item.last_error or "")


class RefusingConnector(FlakyConnector):
    """Every send fails retryably, with ``retry_after`` as the platform's Retry-After."""

    retry_after: float | None = None

    async def send(self, out: Outbound) -> None:
        raise DeliveryError("HTTP 503 from platform", retry_after_s=self.retry_after)


class Clock:
    """The outbox's ``time``: a whole second just after the real now (so what was queued
    is due), moved by the test."""

    def __init__(self) -> None:
        self.now = float(int(time.time()) + 1)

    def time(self) -> float:
        return self.now


async def test_retries_double_to_the_cap_unless_the_platform_says_when(
    storage: SQLStorage, monkeypatch: pytest.MonkeyPatch
) -> None:
    clock = Clock()
    monkeypatch.setattr(outbox_module, "time", clock)
    connector = RefusingConnector()
    config = OutboxConfig(initial_backoff_s=10.0, max_backoff_s=25.0, max_attempts=6)
    outbox = OutboxDispatcher(storage, config, Metrics(CollectorRegistry()))
    outbox.attach("flaky", connector)
    oid = await storage.enqueue(TextOut(channel="flaky", chat_id="A", text="x"))
    waits: list[float] = []
    for retry_after in (None, None, None, 7.0, None):
        connector.retry_after = retry_after
        assert await outbox.deliver_due() == 0
        due = await storage.next_outbox_due()
        assert due is not None
        waits.append(due - clock.now)
        clock.now = due
    assert waits == [10.0, 20.0, 25.0, 7.0, 25.0]
    assert await outbox.deliver_due() == 0  # the sixth attempt was the last
    item = await storage.get_outbox(oid)
    assert item is not None and item.status == "failed" and item.attempts == 6
