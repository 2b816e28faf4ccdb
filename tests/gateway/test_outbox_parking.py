"""Parking in the outbox with the real web connector and a real StreamHub: a parked
session holds back only itself, keeps its order, and never makes the dispatcher spin.

A "tab" here is what the chat socket does at the StreamHub seam (nexflow.web.frames):
follow the session's stream, publish acknowledgements on its ack topic.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator

import pytest
from prometheus_client import CollectorRegistry

from connectors.web.connector import WebConnector
from nexflow.bus.events import InboundEvent, Outbound, TextOut
from nexflow.bus.streams import StreamHub
from nexflow.config.model import OutboxConfig
from nexflow.gateway import ConnectorManifest, OutboxDispatcher
from nexflow.gateway.connector import Parked
from nexflow.observability.metrics import Metrics
from nexflow.storage import SQLStorage
from nexflow.web.frames import JOINED, LEFT, ack_event, ack_topic


class Recorder:
    manifest = ConnectorManifest("tg", "tests", frozenset({"text"}))

    def __init__(self) -> None:
        self.sent: list[str] = []

    async def start(self) -> None: ...
    async def stop(self) -> None: ...

    async def events(self) -> AsyncIterator[InboundEvent]:
        return
        yield

    async def send(self, out: Outbound) -> None:
        assert isinstance(out, TextOut)
        self.sent.append(out.text)


class Tab:
    """Follows a session like a chat socket does; acknowledges when ``acks`` is True."""

    def __init__(self, streams: StreamHub, session: str, acks: bool = True) -> None:
        self.streams, self.session, self.acks = streams, session, acks
        self.seen: list[str] = []
        self.queue = streams.subscribe(session)
        streams.publish(ack_topic(session), JOINED)
        self.task = asyncio.create_task(self._read())

    async def _read(self) -> None:
        while True:
            frame = await self.queue.get()
            self.seen.append(frame["text"])
            if self.acks:
                self.streams.publish(ack_topic(self.session), ack_event(frame["outbox_id"]))

    async def close(self) -> None:
        self.task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self.task
        self.streams.unsubscribe(self.session, self.queue)
        self.streams.publish(ack_topic(self.session), LEFT)


def web(session: str, text: str, chat: str = "web") -> TextOut:
    return TextOut(channel="web", chat_id=chat, session_id=session, text=text)


async def status(storage: SQLStorage, oid: int) -> str:
    item = await storage.get_outbox(oid)
    assert item is not None
    return item.status


@pytest.fixture
def streams() -> StreamHub:
    return StreamHub()


@pytest.fixture
def outbox(storage: SQLStorage, streams: StreamHub) -> OutboxDispatcher:
    dispatcher = OutboxDispatcher(storage, OutboxConfig(), Metrics(CollectorRegistry()))
    dispatcher.attach("web", WebConnector(streams, ack_timeout_s=0.3))
    return dispatcher


async def test_parked_session_holds_back_only_itself(
    storage: SQLStorage, streams: StreamHub, outbox: OutboxDispatcher
) -> None:
    telegram = Recorder()
    outbox.attach("tg", telegram)
    a1 = await storage.enqueue(web("A", "a1"))
    a2 = await storage.enqueue(web("A", "a2"))
    tg = await storage.enqueue(TextOut(channel="tg", chat_id="7", text="tg"))
    b1 = await storage.enqueue(web("B", "b1"))  # same chat id "web", another session
    tab_b = Tab(streams, "B")
    assert await outbox.deliver_due() == 2
    assert telegram.sent == ["tg"] and tab_b.seen == ["b1"]
    assert [await status(storage, i) for i in (a1, a2, tg, b1)] == [
        "parked",
        "pending",  # waits behind a1, in order
        "delivered",
        "delivered",
    ]
    # Nothing is due: the dispatcher sleeps instead of spinning on the parked session.
    assert await storage.next_outbox_due() is None
    assert await storage.due_outbox(1e12, 10) == []
    # A tab of A connects: A's items go out in order.
    tab_a = Tab(streams, "A")
    assert await storage.unpark_session("A") == 1
    assert await outbox.deliver_due() == 2
    assert tab_a.seen == ["a1", "a2"]
    assert {await status(storage, i) for i in (a1, a2)} == {"delivered"}
    await tab_a.close()
    await tab_b.close()


async def test_no_acknowledgement_in_time_parks(
    storage: SQLStorage, streams: StreamHub, outbox: OutboxDispatcher
) -> None:
    silent = Tab(streams, "A", acks=False)
    oid = await storage.enqueue(web("A", "are you there?"))
    assert await outbox.deliver_due() == 0
    assert silent.seen == ["are you there?"]
    assert await status(storage, oid) == "parked"
    item = await storage.get_outbox(oid)
    assert item is not None and item.attempts == 0
    await silent.close()


async def test_a_tab_that_opens_during_the_wait_gets_the_reply(
    storage: SQLStorage, streams: StreamHub
) -> None:
    connector = WebConnector(streams, ack_timeout_s=5)
    silent = Tab(streams, "A", acks=False)
    delivery = asyncio.create_task(connector.deliver(web("A", "hi"), 41))
    await asyncio.sleep(0.05)
    fresh = Tab(streams, "A")  # acknowledges: the delivery ends well before the timeout
    async with asyncio.timeout(1):
        await delivery
    assert fresh.seen == ["hi"] and silent.seen == ["hi", "hi"]
    await silent.close()
    await fresh.close()


async def test_last_tab_closing_parks_at_once(streams: StreamHub) -> None:
    connector = WebConnector(streams, ack_timeout_s=30)
    tab = Tab(streams, "A", acks=False)
    delivery = asyncio.create_task(connector.deliver(web("A", "hi"), 7))
    await asyncio.sleep(0.05)
    await tab.close()
    with pytest.raises(Parked, match="last tab closed"):
        async with asyncio.timeout(1):
            await delivery


async def test_without_a_tab_every_web_item_is_parked(streams: StreamHub) -> None:
    # A turn's reply whose HTTP caller waited was recorded delivered at completion (it went
    # out in that response); one that reaches the outbox had no reader: it waits too.
    connector = WebConnector(streams)
    with pytest.raises(Parked):
        await connector.deliver(web("A", "the answer").model_copy(update={"reply_to": "ev1"}), 1)
    with pytest.raises(Parked):
        await connector.deliver(web("A", "a reminder"), 2)


async def test_slow_acknowledgement_does_not_hold_up_other_channels(
    storage: SQLStorage, streams: StreamHub
) -> None:
    outbox = OutboxDispatcher(storage, OutboxConfig(), Metrics(CollectorRegistry()))
    outbox.attach("web", WebConnector(streams, ack_timeout_s=5))
    telegram = Recorder()
    outbox.attach("tg", telegram)
    silent = Tab(streams, "A", acks=False)
    await storage.enqueue(web("A", "waiting"))
    outbox.start()
    outbox.notify()
    await asyncio.sleep(0.1)  # the web lane now waits for an acknowledgement
    await outbox.post(TextOut(channel="tg", chat_id="7", text="meanwhile"))
    async with asyncio.timeout(2):
        while not telegram.sent:  # noqa: ASYNC110 - watching the recorder
            await asyncio.sleep(0.02)
    assert telegram.sent == ["meanwhile"]
    await outbox.stop()
    await silent.close()


async def test_a_parked_row_always_knows_its_session(storage: SQLStorage) -> None:
    """Rows queued by a path that does not fill outbox.session_id can still be un-parked."""
    oid = await storage.enqueue(web("A", "ask"))
    await storage._exec("UPDATE outbox SET session_id=NULL WHERE id=?", (oid,))
    await storage.park_outbox(oid)
    assert await storage.unpark_session("A") == 1
    assert await status(storage, oid) == "pending"
