"""Live events across replicas (:mod:`nexflow.gateway.stream_relay`): the stream hub of
one replica reaches sockets on another over the real bus (Postgres ``LISTEN/NOTIFY`` and
Redis pub/sub), ``/ws/events`` frames reach only their owner's sockets, and publishing
never blocks or fails a turn. Then two real gateways on one Postgres: a browser on
replica X streams a turn sent to replica Y, receives and acknowledges a reply Y's outbox
delivers, and hears its own ``/ws/events`` frames (and nobody else's)."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Callable, Mapping
from contextlib import AsyncExitStack, asynccontextmanager
from pathlib import Path
from typing import Any

import pytest
import websockets
import yaml
from websockets.asyncio.client import ClientConnection

from nexflow.bus.events import TextOut
from nexflow.bus.streams import StreamHub
from nexflow.gateway.stream_relay import Relay, StreamRelays, stream_relays
from nexflow.scale.bus import EventBus, LocalBus, bus_for
from nexflow.scale.errors import ScaleUnavailable
from nexflow.testing.fake_llm import Reply
from nexflow.testing.harness import GatewayHarness
from nexflow.testing.waiting import wait_until
from nexflow.web.events import EventHub, FileCommitted, Toast

Frame = dict[str, Any]
CAROL = "carol-web-token-0123456789abcdef"


@pytest.fixture(params=["postgres", "redis"])
def bus_urls(request: pytest.FixtureRequest, pg_url: str) -> tuple[str, str | None]:
    """(storage URL, redis URL): the bus is LISTEN/NOTIFY, then Redis pub/sub."""
    if request.param == "redis":
        return pg_url, request.getfixturevalue("redis_server").url
    return pg_url, None


@asynccontextmanager
async def replica(
    urls: tuple[str, str | None], name: str
) -> AsyncIterator[tuple[StreamHub, EventHub, StreamRelays]]:
    """One replica's hubs and relays (what the composition root builds)."""
    streams, events = StreamHub(), EventHub()
    relays = stream_relays(urls[0], urls[1], (streams, events), name=name)
    assert relays is not None
    for relay in relays.relays:
        relay._presence_s = 0.5  # quick heartbeats: an expiry test below waits for three
    await relays.start()
    try:
        yield streams, events, relays
    finally:
        await relays.stop()


def test_no_relay_on_one_gateway(tmp_path: Path) -> None:
    hubs = (StreamHub(), EventHub())
    assert stream_relays(f"sqlite:///{tmp_path}/nexflow.db", None, hubs) is None
    # a redis.url alone does not make replicas: the storage is still one SQLite file
    assert stream_relays(f"sqlite:///{tmp_path}/x.db", "redis://127.0.0.1:1/0", hubs) is None


async def test_tokens_reach_a_socket_on_another_replica(bus_urls: tuple[str, str | None]) -> None:
    async with replica(bus_urls, "x") as (x, _, _), replica(bus_urls, "y") as (y, _, y_relays):
        assert not y.has_subscribers("s1")
        tab = x.subscribe("s1")
        await x.ready("s1")
        await wait_until(lambda: y.has_subscribers("s1"))  # X told Y
        local_y = y.subscribe("s1")  # Y has a tab of its own too
        tokens = [{"type": "token", "text": f"t{i}"} for i in range(200)]
        for event in tokens:
            y.publish("s1", event)
        got = [await asyncio.wait_for(tab.get(), 5) for _ in tokens]
        assert got == tokens  # all of them, in order, once
        assert [local_y.get_nowait() for _ in tokens] == tokens
        assert local_y.empty()  # Y's own tab is not served twice by its own bus message
        await asyncio.sleep(0.2)
        assert tab.empty()
        x.unsubscribe("s1", tab)  # Y hears X's tab is gone; its own still counts
        await wait_until(lambda: not y_relays.relays[0].watched("s1"))
        assert y.has_subscribers("s1")
        y.unsubscribe("s1", local_y)
        assert not y.has_subscribers("s1")
        await wait_until(lambda: not x.has_subscribers("s1"))


async def test_a_dead_replicas_sockets_expire(bus_urls: tuple[str, str | None]) -> None:
    async with replica(bus_urls, "y") as (y, _, _):
        async with replica(bus_urls, "x") as (x, _, x_relays):
            x.subscribe("s2")
            await x.ready("s2")
            await wait_until(lambda: y.has_subscribers("s2"))
            for relay in x_relays.relays:  # as if SIGKILLed: no more heartbeats, no goodbye
                for task in relay._tasks:
                    task.cancel()
                relay._tasks.clear()
                relay._bus = DownBus()
            assert y.has_subscribers("s2")
        # three missed heartbeats (0.5 s each here) and x's sockets are forgotten
        await wait_until(lambda: not y.has_subscribers("s2"), within=5)


async def test_a_late_replica_learns_who_watches(bus_urls: tuple[str, str | None]) -> None:
    async with replica(bus_urls, "x") as (x, _, _):
        x.subscribe("s3")
        await x.ready("s3")
        async with replica(bus_urls, "y") as (y, _, _):  # asks "?" when it starts
            await wait_until(lambda: y.has_subscribers("s3"), within=0.4)  # before a beat


async def test_events_reach_only_their_owner(bus_urls: tuple[str, str | None]) -> None:
    async with replica(bus_urls, "x") as (_, x, _), replica(bus_urls, "y") as (_, y, y_relays):
        alice, bob = x.subscribe("alice"), x.subscribe("bob")
        await x.ready("alice")
        await x.ready("bob")
        await wait_until(lambda: y.listening("alice") and y.listening("bob"))
        y.publish("alice", Toast(panel_id="p1", message="for alice"))
        y.publish("bob", FileCommitted(workspace="w", path="b.md", sha="1"))
        assert await asyncio.wait_for(alice.get(), 5) == {
            "type": "toast",
            "panel_id": "p1",
            "message": "for alice",
        }
        assert (await asyncio.wait_for(bob.get(), 5))["path"] == "b.md"
        # A message on alice's channel that names another key, or is not a frame, is
        # dropped by the receiving replica (it checks the owner and the frame itself).
        bus = y_relays.bus
        origin = y_relays.relays[1].origin
        await bus.publish("events:alice", {"o": origin, "k": "bob", "e": [{"type": "pong"}]})
        await bus.publish("events:bob", {"o": origin, "k": "bob", "e": [{"type": "rm -rf"}]})
        y.publish("alice", Toast(panel_id="p1", message="still alice"))
        assert (await asyncio.wait_for(alice.get(), 5))["message"] == "still alice"
        await asyncio.sleep(0.1)
        assert alice.empty() and bob.empty()


class DownBus(LocalBus):
    """A backend that is down for publishing (what ``bus.publish`` raises then)."""

    async def publish(self, channel: str, payload: Mapping[str, Any]) -> None:
        raise ScaleUnavailable("the server went away")


async def test_publishing_never_blocks_or_fails_the_turn() -> None:
    bus: EventBus = DownBus()
    hub = StreamHub()
    relay = Relay(bus, "stream", hub.deliver_remote, queue_size=8)
    hub.attach_relay(relay)
    relay._remote["s"] = {"another replica": float("inf")}  # it watches "s" for good
    await relay.start()
    try:
        for i in range(100):  # synchronous: the queue takes 8, the rest are dropped
            hub.publish("s", {"type": "token", "text": str(i)})
        assert relay.dropped >= 92
        await wait_until(relay._queue.empty)
        assert relay.dropped >= 100  # the backend's errors were logged, the events dropped
    finally:
        await relay.stop()


async def test_over_the_limit_alone_is_dropped_batched_are_split(pg_url: str) -> None:
    bus = bus_for(pg_url, None, name="limits")
    await bus.open()
    try:
        hub, seen = StreamHub(), StreamHub()
        sender = Relay(bus, "stream", hub.deliver_remote)
        receiver = Relay(bus, "stream", seen.deliver_remote)
        hub.attach_relay(sender)
        seen.attach_relay(receiver)
        await sender.start()
        await receiver.start()
        tab = seen.subscribe("big")
        await seen.ready("big")
        await wait_until(lambda: hub.has_subscribers("big"))
        huge = {"type": "reply", "text": "x" * (2 << 20)}  # over the 1 MiB NOTIFY limit
        small = {"type": "token", "text": "ok"}
        for event in (small, huge, small):
            hub.publish("big", event)
        assert await asyncio.wait_for(tab.get(), 5) == small
        assert await asyncio.wait_for(tab.get(), 5) == small
        assert sender.dropped == 1
        await sender.stop()
        await receiver.stop()
    finally:
        await bus.close()


# -- two real gateways on one Postgres --------------------------------------------------


@asynccontextmanager
async def two_gateways(
    tmp_path: Path, urls: tuple[str, str | None]
) -> AsyncIterator[tuple[GatewayHarness, GatewayHarness]]:
    config = {"web": {"users": {"carol": CAROL}}, "memory": {"paging": False}}
    if urls[1]:
        config["redis"] = {"url": urls[1]}
    async with AsyncExitStack() as stack:
        gateways = []
        for name in ("x", "y"):
            path = tmp_path / f"{name}.yml"
            path.write_text(yaml.safe_dump(config))
            gw = GatewayHarness(tmp_path / name, config_file=path, storage_url=urls[0])
            gateways.append(await stack.enter_async_context(gw))
        yield gateways[0], gateways[1]


def ws(gw: GatewayHarness, path: str) -> str:
    return gw.url.replace("http://", "ws://") + path


async def recv_until(sock: ClientConnection, wanted: Callable[[Frame], bool]) -> Frame:
    async with asyncio.timeout(15):
        while True:
            frame: Frame = json.loads(await sock.recv())
            if wanted(frame):
                return frame


def hubs(gw: GatewayHarness) -> tuple[StreamHub, EventHub]:
    assert gw.app is not None and gw.app.events is not None
    streams = gw.app.web.state.services.streams
    assert isinstance(streams, StreamHub)
    return streams, gw.app.events


async def test_a_browser_on_x_streams_a_turn_run_on_y(
    tmp_path: Path, bus_urls: tuple[str, str | None]
) -> None:
    async with two_gateways(tmp_path, bus_urls) as (x, y):
        session = (await y.chat("hello"))["session"]
        async with websockets.connect(ws(x, f"/ws/chat/{session}")) as tab:
            await recv_until(tab, lambda f: f["type"] == "session")
            await wait_until(lambda: hubs(y)[0].has_subscribers(session))
            text = "a reply long enough to arrive in several streamed pieces over the bus"
            y.llm.push(Reply(text=text))
            turn = asyncio.create_task(y.chat("stream it", session))
            tokens: list[str] = []
            while "".join(tokens) != text:
                frame = await recv_until(tab, lambda f: f["type"] == "token")
                tokens.append(frame["text"])
            assert len(tokens) > 3
            assert (await turn)["reply"] == text
            assert y.llm.requests[-1].get("stream") is True

            # A reply Y's outbox delivers (a reminder) reaches the tab on X, and the tab's
            # acknowledgement travels back: delivered, not parked.
            assert y.app is not None
            out = TextOut(channel="web", chat_id=session, session_id=session, text="⏰ stretch")
            oid = await y.app.outbox.post(out)
            reply = await recv_until(tab, lambda f: f.get("outbox_id") == oid)
            assert reply["text"] == "⏰ stretch"
            await tab.send(json.dumps({"type": "ack", "outbox_id": oid}))
            async with asyncio.timeout(10):
                while (item := await y.app.storage.get_outbox(oid)) is None or (
                    item.status != "delivered"
                ):
                    assert item is None or item.status in ("pending", "delivering"), item
                    await asyncio.sleep(0.02)


async def test_events_for_a_user_on_y_reach_only_their_sockets_on_x(
    tmp_path: Path, bus_urls: tuple[str, str | None]
) -> None:
    async with two_gateways(tmp_path, bus_urls) as (x, y):
        headers = {"Authorization": f"Bearer {CAROL}"}
        async with (
            websockets.connect(ws(x, "/ws/events")) as owner,
            websockets.connect(ws(x, "/ws/events"), additional_headers=headers) as carol,
        ):
            for sock in (owner, carol):
                await sock.send(json.dumps({"type": "ping"}))
                await recv_until(sock, lambda f: f["type"] == "pong")
            assert y.app is not None
            found = await y.app.storage.find_user("web", "owner")
            assert found is not None
            await wait_until(lambda: hubs(y)[1].listening(found[0]))
            # a panel made and changed over Y's API: its frames are rendered on Y
            created = (await y.http.post("/api/v1/panels", json={"template": "todo"})).json()
            frame = await recv_until(owner, lambda f: f["type"] == "panel.created")
            assert frame["panel"]["id"] == created["id"]
            r = await y.http.post(
                f"/api/v1/panels/{created['id']}/tools/add_item", json={"text": "milk"}
            )
            assert r.json()["ok"] is True
            update = await recv_until(
                owner, lambda f: f["type"] == "panel.updated" and f["version"] >= 2
            )
            assert update["state"]["items"] == [{"text": "milk", "done": False}]
            hubs(y)[1].publish(found[0], FileCommitted(workspace="default", path="a", sha="1"))
            await recv_until(owner, lambda f: f["type"] == "file.committed")
            # Carol heard none of it: only her pong comes back
            await asyncio.sleep(0.3)
            await carol.send(json.dumps({"type": "ping"}))
            assert json.loads(await asyncio.wait_for(carol.recv(), 5)) == {"type": "pong"}
