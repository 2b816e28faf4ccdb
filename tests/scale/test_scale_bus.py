import asyncio
import os
import sys
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path

import psycopg
import pytest
import redis.asyncio as aioredis

from nexflow.scale.bus import EventBus, LocalBus, Subscription, bus_for
from nexflow.scale.errors import MessagesLost, PayloadTooLarge
from nexflow.scale.pg_bus import PostgresBus
from nexflow.scale.redis_bus import RedisBus

PEER = Path(__file__).with_name("peer.py")
REPO = Path(__file__).resolve().parents[2]

OpenBus = Callable[..., Awaitable[EventBus]]


@pytest.fixture(params=["local", "postgres", "redis"])
def backend(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture(params=["postgres", "redis"])
def shared_backend(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
async def open_bus(request: pytest.FixtureRequest) -> AsyncIterator[OpenBus]:
    """``await open_bus(kind, **options)``: an open bus, closed after the test; buses of
    one test share their backend (one Postgres schema, one Redis)."""
    opened: list[EventBus] = []
    urls: dict[str, str] = {}

    async def make(kind: str, **options: object) -> EventBus:
        bus: EventBus
        if kind == "local":
            bus = LocalBus(**options)  # type: ignore[arg-type]
        elif kind == "postgres":
            url = urls.setdefault(kind, request.getfixturevalue("pg_url"))
            bus = PostgresBus(url, name=f"t{uuid.uuid4().hex[:8]}", **options)  # type: ignore[arg-type]
        else:
            url = urls.setdefault(kind, request.getfixturevalue("redis_url"))
            bus = RedisBus(url, name=f"t{uuid.uuid4().hex[:8]}", **options)  # type: ignore[arg-type]
        await bus.open()
        opened.append(bus)
        return bus

    yield make
    for bus in opened:
        await bus.close()


def _url(request: pytest.FixtureRequest, kind: str) -> str:
    return str(request.getfixturevalue("pg_url" if kind == "postgres" else "redis_url"))


async def _take(sub: Subscription, n: int, wait_s: float = 10) -> list[dict[str, object]]:
    got: list[dict[str, object]] = []
    async with asyncio.timeout(wait_s):
        async for payload in sub:
            got.append(payload)
            if len(got) == n:
                break
    return got


async def test_delivery_in_order_to_every_subscription(backend: str, open_bus: OpenBus) -> None:
    publisher = await open_bus(backend)
    receiver = publisher if backend == "local" else await open_bus(backend)
    async with (
        receiver.subscribe("turn:1") as first,
        receiver.subscribe("turn:1") as second,
        receiver.subscribe("turn:2") as other,
    ):
        for i in range(200):
            await publisher.publish("turn:1", {"i": i, "text": "привет"})
        await publisher.publish("turn:2", {"i": -1})
        expected = [{"i": i, "text": "привет"} for i in range(200)]
        assert await _take(first, 200) == expected
        assert await _take(second, 200) == expected
        assert await _take(other, 1) == [{"i": -1}]


async def test_leaving_unsubscribes_and_a_new_subscription_works(
    backend: str, open_bus: OpenBus
) -> None:
    bus = await open_bus(backend)
    async with bus.subscribe("c") as sub:
        await bus.publish("c", {"n": 1})
        assert await _take(sub, 1) == [{"n": 1}]
    assert await _drain(sub) == []  # a subscription left ends
    await bus.publish("c", {"n": 2})  # no one listens: gone, or (still in flight) seen
    async with bus.subscribe("c") as sub:  # by the next subscription
        await bus.publish("c", {"n": 3})
        got = await _take(sub, 1)
        if got == [{"n": 2}]:
            got = await _take(sub, 1)
        assert got == [{"n": 3}]


async def _drain(sub: Subscription) -> list[dict[str, object]]:
    async with asyncio.timeout(5):
        return [payload async for payload in sub]


async def test_a_slow_subscriber_is_told_it_lost_messages() -> None:
    bus = LocalBus(queue_size=5)
    async with bus.subscribe("c") as sub:
        for i in range(8):
            await bus.publish("c", {"i": i})
        assert await _take(sub, 5) == [{"i": i} for i in range(5)]
        with pytest.raises(MessagesLost):
            await anext(sub)
        await bus.publish("c", {"i": 99})
        assert await _take(sub, 1) == [{"i": 99}]  # still usable


@pytest.mark.slow
async def test_delivery_from_another_process_in_order(
    shared_backend: str, open_bus: OpenBus, request: pytest.FixtureRequest
) -> None:
    bus = await open_bus(shared_backend)
    channel = f"turn:{uuid.uuid4().hex}"
    # Every fourth payload is over 8 KB, so NOTIFY's limit is crossed in the stream.
    async with bus.subscribe(channel) as sub:
        await _peer_publish(shared_backend, _url(request, shared_backend), channel, 40, 9000)
        got = await _take(sub, 40, wait_s=30)
    assert [p["i"] for p in got] == list(range(40))
    assert all(p["pad"] == "x" * 9000 for p in got)


async def _peer_publish(kind: str, url: str, channel: str, count: int, pad: int) -> None:
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    proc = await asyncio.create_subprocess_exec(
        sys.executable, str(PEER), "publish", kind, url, channel, str(count), str(pad),
        stdout=asyncio.subprocess.PIPE,
        env=env,
    )  # fmt: skip
    out, _ = await asyncio.wait_for(proc.communicate(), 60)
    assert proc.returncode == 0 and out.strip() == b"done"


async def test_payload_over_8kb_on_postgres(open_bus: OpenBus) -> None:
    a, b = await open_bus("postgres"), await open_bus("postgres")
    big = {"text": "ж" * 30_000 + "\u2028", "nested": {"list": list(range(2000))}}
    async with b.subscribe("big") as sub:
        await a.publish("big", {"before": True})
        await a.publish("big", big)
        await a.publish("big", {"after": True})
        assert await _take(sub, 3) == [{"before": True}, big, {"after": True}]
    with pytest.raises(PayloadTooLarge):
        await a.publish("big", {"text": "x" * (2 << 20)})


async def test_reconnect_after_the_server_kills_the_connection(
    shared_backend: str, open_bus: OpenBus, request: pytest.FixtureRequest
) -> None:
    publisher = await open_bus(shared_backend)
    bus = await open_bus(shared_backend)
    url = _url(request, shared_backend)
    async with bus.subscribe("c") as sub:
        await publisher.publish("c", {"n": 1})
        assert await _take(sub, 1) == [{"n": 1}]
        assert await _kill_listener(shared_backend, url, bus) == 1
        with pytest.raises(MessagesLost):
            async with asyncio.timeout(10):
                await anext(sub)
        # Once listening again, messages flow (the ones sent before that are lost).
        async with asyncio.timeout(15):
            while True:
                await publisher.publish("c", {"n": 2})
                try:
                    async with asyncio.timeout(0.2):
                        if await anext(sub) == {"n": 2}:
                            break
                except TimeoutError:
                    continue


async def _kill_listener(kind: str, url: str, bus: EventBus) -> int:
    if kind == "postgres":
        assert isinstance(bus, PostgresBus)
        async with await psycopg.AsyncConnection.connect(url, autocommit=True) as conn:
            cur = await conn.execute(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
                " WHERE application_name = %s",
                (bus.listener_name,),
            )
            return len(await cur.fetchall())
    assert isinstance(bus, RedisBus)
    client = aioredis.Redis.from_url(url, decode_responses=True)
    try:
        clients = await client.client_list()
        ids = [c["id"] for c in clients if c["name"] == bus.client_name and int(c["sub"]) > 0]
        for client_id in ids:
            await client.client_kill_filter(_id=client_id)
        return len(ids)
    finally:
        await client.aclose()


def test_bus_for_follows_the_configuration() -> None:
    assert isinstance(bus_for("sqlite:///x.db", None), LocalBus)
    assert isinstance(bus_for("postgresql://u@h/db", None), PostgresBus)
    assert isinstance(bus_for("postgresql://u@h/db", "redis://h:6379/0"), RedisBus)
