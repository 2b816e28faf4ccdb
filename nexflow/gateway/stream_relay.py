"""Live events across replicas: a browser connected to replica X sees the tokens, tool
events and replies of a turn run on replica Y, and its ``/ws/events`` frames.

The two in-process hubs (:class:`~nexflow.bus.streams.StreamHub` for ``/ws/chat``,
:class:`~nexflow.web.events.EventHub` for ``/ws/events``) stay what they are on one
gateway. With storage on Postgres each gets a :class:`Relay` over the deployment's
:class:`~nexflow.scale.bus.EventBus` (Redis pub/sub when ``redis.url`` is set, else
``LISTEN/NOTIFY``); on SQLite there is no relay and nothing changes.

- **Channels.** A hub key (a session id, an ``ack:<session>`` topic, an owner's user id)
  is the bus channel ``<namespace>:<key>`` (namespaces ``stream`` and ``events``). A
  replica listens on a key's channel while one of its sockets subscribes to the key.
- **Presence.** Each replica announces the keys it has sockets for on
  ``<namespace>:~presence`` (``+`` on the first socket, ``-`` after the last, all of them
  every ``presence_s`` (``replicas.presence_s`` in the config) and when another replica
  asks with ``?`` after it started or missed messages; ``x`` when it stops). So a replica
  knows a key is watched elsewhere: a turn streams (``has_subscribers``), a panel is
  rendered (``listening``), and events are published on the bus only then. A SIGKILLed
  replica's keys expire after three missed announcements.
- **Fire and forget.** :meth:`Relay.publish` never blocks the turn: events go into a
  bounded queue (full: dropped, logged), one task sends them in order, consecutive events
  of one key in one bus message. A backend error or a payload over the backend's limit
  is logged and the events dropped; what must not be lost is in storage (the reply
  itself is delivered through the outbox, acknowledged by the tab).
- **Order.** The sender waits until every key subscribed before an event is listened
  on before it sends the event, so an acknowledgement answering it cannot overtake the
  replica's listening (the web connector subscribes to ``ack:<session>``, then sends).
- **Trust.** A message is only taken for the key whose channel it arrived on (its ``k``
  must be that key), so an owner's frames reach only that owner's sockets on the
  receiving replica too; the events hub validates each frame against its union.
- **Stop.** :attr:`StreamRelays.stops` carries a Stop to the replica running the turn
  (:class:`~nexflow.gateway.stop.RemoteStops`), on the same bus.
- **Gaps** (:class:`~nexflow.scale.errors.MessagesLost`): logged; streams go on (the
  final reply is in storage); presence is asked for again.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
import uuid
from collections.abc import Callable, Iterable, Mapping
from typing import Any, Protocol

import structlog

from nexflow.bus.streams import StreamRelay
from nexflow.gateway.stop import RemoteStops
from nexflow.scale.bus import EventBus, LocalBus, bus_for
from nexflow.scale.errors import MessagesLost, PayloadTooLarge, ScaleUnavailable

log = structlog.get_logger("nexflow.gateway.stream_relay")

Event = Mapping[str, Any]
Deliver = Callable[[str, dict[str, Any]], None]  # (key, event) to this replica's sockets

PRESENCE = "~presence"
QUEUE_SIZE = 4096
BATCH = 32  # events of one key per bus message at most
PRESENCE_CHUNK = 200  # keys per presence announcement
READY_TIMEOUT_S = 5.0
RETRY_S = 1.0


class Relay:
    """One hub's events to and from the same hub on the other replicas (module
    docstring). ``deliver`` hands an event that came from another replica to this
    replica's sockets of the key."""

    def __init__(
        self,
        bus: EventBus,
        namespace: str,
        deliver: Deliver,
        *,
        origin: str | None = None,
        queue_size: int = QUEUE_SIZE,
        presence_s: float = 10.0,
        ready_timeout_s: float = READY_TIMEOUT_S,
    ) -> None:
        self._bus = bus
        self._ns = namespace
        self._deliver = deliver
        self.origin = origin or uuid.uuid4().hex
        self._queue: asyncio.Queue[tuple[str, dict[str, Any]]] = asyncio.Queue(queue_size)
        self._presence_s = presence_s
        self._ready_timeout_s = ready_timeout_s
        self._listeners: dict[str, tuple[asyncio.Task[None], asyncio.Event]] = {}
        self._remote: dict[str, dict[str, float]] = {}  # key -> replica -> last heard
        self._tasks: list[asyncio.Task[None]] = []
        self._closing: set[asyncio.Task[None]] = set()  # listeners being cancelled
        self._stopped = False
        self._dropping = False
        self._failing = False
        self.dropped = 0  # events not sent: queue full, backend down, too large (tests, ops)

    @property
    def presence_s(self) -> float:
        """How often this replica announces its keys (three missed: they expire)."""
        return self._presence_s

    def _channel(self, key: str) -> str:
        return f"{self._ns}:{key}"

    # -- lifecycle (the bus is opened and closed by its owner) ---------------------------

    async def start(self) -> None:
        presence_ready = asyncio.Event()
        self._tasks = [
            asyncio.create_task(self._send_loop(), name=f"relay-send:{self._ns}"),
            asyncio.create_task(self._presence_loop(presence_ready), name=f"relay-pres:{self._ns}"),
        ]
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(self._ready_timeout_s):
                await presence_ready.wait()

    async def stop(self) -> None:
        self._stopped = True  # sockets closing after this stay local
        with contextlib.suppress(ScaleUnavailable, TypeError):
            await self._bus.publish(self._channel(PRESENCE), {"o": self.origin, "op": "x"})
        tasks = [*self._tasks, *self._closing, *(task for task, _ in self._listeners.values())]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        self._tasks.clear()
        self._listeners.clear()

    # -- this replica's sockets ---------------------------------------------------------

    def watch(self, key: str) -> None:
        """A socket of this replica subscribed to ``key`` (the first one): listen."""
        if key in self._listeners or self._stopped:
            return
        ready = asyncio.Event()
        task = asyncio.create_task(self._listen(key, ready), name=f"relay-listen:{self._ns}")
        self._listeners[key] = (task, ready)
        self._announce("+", [key])

    def unwatch(self, key: str) -> None:
        """The last socket of this replica for ``key`` is gone."""
        entry = self._listeners.pop(key, None)
        if entry is not None:
            task = entry[0]
            task.cancel()  # leaving the subscription unlistens
            self._closing.add(task)
            task.add_done_callback(self._closing.discard)
            self._announce("-", [key])

    async def ready(self, key: str) -> None:
        """Wait until events of ``key`` published elsewhere reach this replica (bounded:
        with the backend down the socket works locally)."""
        entry = self._listeners.get(key)
        if entry is None:
            return
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(self._ready_timeout_s):
                await entry[1].wait()

    def watched(self, key: str) -> bool:
        """Another replica has a socket subscribed to ``key`` (as far as it said)."""
        heard = self._remote.get(key)
        if not heard:
            return False
        horizon = time.monotonic() - 3 * self._presence_s
        for origin, at in list(heard.items()):
            if at < horizon:
                del heard[origin]
        if not heard:
            del self._remote[key]
            return False
        return True

    def publish(self, key: str, event: Event) -> None:
        """Queue ``event`` for the other replicas watching ``key``; never blocks."""
        if self.watched(key):
            self._put(key, dict(event))

    # -- sending ------------------------------------------------------------------------

    def _put(self, key: str, item: dict[str, Any]) -> None:
        try:
            self._queue.put_nowait((key, item))
            self._dropping = False
        except asyncio.QueueFull:
            self.dropped += 1
            if not self._dropping:  # once per run of drops
                self._dropping = True
                log.warning("stream_relay_queue_full", namespace=self._ns, note="events dropped")

    def _announce(self, op: str, keys: Iterable[str]) -> None:
        keys = list(keys)
        for i in range(0, max(1, len(keys)), PRESENCE_CHUNK):
            self._put(PRESENCE, {"o": self.origin, "op": op, "k": keys[i : i + PRESENCE_CHUNK]})

    async def _send_loop(self) -> None:
        while True:
            batch = [await self._queue.get()]
            while len(batch) < BATCH * 4 and not self._queue.empty():
                batch.append(self._queue.get_nowait())
            await self._settle()
            for key, payload in _coalesce(batch, self.origin):
                await self._send(key, payload)

    async def _settle(self) -> None:
        """Wait (bounded) until the keys subscribed so far are listened on."""
        pending = [ready.wait() for _, ready in self._listeners.values() if not ready.is_set()]
        if pending:
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(self._ready_timeout_s):
                    await asyncio.gather(*pending)

    async def _send(self, key: str, payload: dict[str, Any]) -> None:
        try:
            await self._bus.publish(self._channel(key), payload)
            if self._failing:
                self._failing = False
                log.info("stream_relay_publishing_again", namespace=self._ns)
        except PayloadTooLarge as exc:
            events = payload.get("e") or []
            if len(events) > 1:  # one of a batch may still fit alone
                for event in events:
                    await self._send(key, {**payload, "e": [event]})
                return
            self.dropped += 1
            log.warning("stream_relay_too_large", namespace=self._ns, error=str(exc))
        except (ScaleUnavailable, TypeError) as exc:
            self.dropped += len(payload.get("e") or [None])
            if not self._failing:  # once per outage, not once per token
                self._failing = True
                log.warning("stream_relay_publish_failed", namespace=self._ns, error=str(exc))

    # -- receiving ------------------------------------------------------------------------

    async def _listen(self, key: str, ready: asyncio.Event) -> None:
        channel = self._channel(key)
        while True:
            try:
                async with self._bus.subscribe(channel) as sub:
                    ready.set()
                    while True:
                        try:
                            async for payload in sub:
                                self._on_events(key, payload)
                            return  # the bus closed
                        except MessagesLost as exc:
                            log.info("stream_relay_gap", namespace=self._ns, reason=exc.reason)
            except ScaleUnavailable as exc:
                log.warning("stream_relay_listen_failed", namespace=self._ns, error=str(exc))
                ready.set()  # the socket works locally meanwhile
                await asyncio.sleep(RETRY_S)

    def _on_events(self, key: str, payload: Mapping[str, Any]) -> None:
        if payload.get("o") == self.origin:
            return  # delivered locally already
        events = payload.get("e")
        if payload.get("k") != key or not isinstance(events, list):
            log.warning("stream_relay_foreign_message", namespace=self._ns)
            return
        for event in events:
            if isinstance(event, dict):
                self._deliver(key, event)

    async def _presence_loop(self, ready: asyncio.Event) -> None:
        channel = self._channel(PRESENCE)
        while True:
            try:
                async with self._bus.subscribe(channel) as sub:
                    ready.set()
                    self._announce("?", [])  # tell me who watches what
                    await self._presence(sub)
                    return
            except ScaleUnavailable as exc:
                log.warning("stream_relay_presence_failed", namespace=self._ns, error=str(exc))
                await asyncio.sleep(RETRY_S)

    async def _presence(self, sub: Any) -> None:
        loop = asyncio.get_running_loop()
        next_beat = loop.time() + self._presence_s
        while True:
            try:
                async with asyncio.timeout_at(next_beat):
                    payload = await anext(sub)
            except TimeoutError:
                next_beat = loop.time() + self._presence_s
                if self._listeners:
                    self._announce("=", list(self._listeners))
                continue
            except StopAsyncIteration:
                return
            except MessagesLost as exc:
                log.info("stream_relay_gap", namespace=self._ns, reason=exc.reason)
                self._announce("?", [])
                continue
            self._on_presence(payload)

    def _on_presence(self, payload: Mapping[str, Any]) -> None:
        origin, op, keys = payload.get("o"), payload.get("op"), payload.get("k") or []
        if not isinstance(origin, str) or origin == self.origin or not isinstance(keys, list):
            return
        now = time.monotonic()
        if op in ("+", "="):
            for key in keys:
                if isinstance(key, str):
                    self._remote.setdefault(key, {})[origin] = now
        elif op == "-":
            for key in keys:
                if isinstance(key, str) and key in self._remote:
                    self._remote[key].pop(origin, None)
        elif op == "x":  # that replica stopped
            for heard in self._remote.values():
                heard.pop(origin, None)
        elif op == "?" and self._listeners:  # a replica started or missed messages
            self._announce("=", list(self._listeners))


def _coalesce(
    batch: list[tuple[str, dict[str, Any]]], origin: str
) -> list[tuple[str, dict[str, Any]]]:
    """Bus messages for ``batch``, in order: a run of one key's events is one message."""
    out: list[tuple[str, dict[str, Any]]] = []
    for key, item in batch:
        if key == PRESENCE:
            out.append((key, item))
            continue
        last = out[-1] if out else None
        if last is not None and last[0] == key and len(last[1]["e"]) < BATCH:
            last[1]["e"].append(item)
        else:
            out.append((key, {"o": origin, "k": key, "e": [item]}))
    return out


class StreamRelays:
    """The bus and the relays of one replica (built by the composition root)."""

    def __init__(self, bus: EventBus, relays: Iterable[Relay]) -> None:
        self.bus = bus
        self.relays = tuple(relays)
        self.stops: RemoteStops | None = None  # Stop requests across replicas, on this bus

    async def start(self) -> None:
        try:
            await self.bus.open()
        except ScaleUnavailable as exc:  # storage on the same server failed to open first
            log.error("stream_relay_unavailable", error=str(exc))
            raise
        for relay in self.relays:
            await relay.start()
        if self.stops is not None:
            await self.stops.start()

    async def stop(self) -> None:
        if self.stops is not None:
            await self.stops.stop()
        for relay in self.relays:
            await relay.stop()
        await self.bus.close()


class Relayed(Protocol):
    """A hub whose events a :class:`Relay` carries to the other replicas."""

    relay_namespace: str

    def deliver_remote(self, key: str, event: dict[str, Any]) -> None:
        """Hand an event published on another replica to this replica's sockets."""
        ...

    def attach_relay(self, relay: StreamRelay) -> None: ...


def stream_relays(
    storage_url: str,
    redis_url: str | None,
    hubs: Iterable[Relayed | None],
    *,
    name: str = "nexflow",
    presence_s: float = 10.0,
) -> StreamRelays | None:
    """Relays for ``hubs`` when storage is on Postgres; None on one gateway (SQLite): the
    hubs stay in-process, at no extra cost. ``presence_s``: ``replicas.presence_s``."""
    if not storage_url.startswith(("postgresql://", "postgres://")):
        return None
    bus = bus_for(storage_url, redis_url, name=name)
    if isinstance(bus, LocalBus):
        return None
    relays = []
    for hub in hubs:
        if hub is None:
            continue
        relay = Relay(bus, hub.relay_namespace, hub.deliver_remote, presence_s=presence_s)
        hub.attach_relay(relay)
        relays.append(relay)
    return StreamRelays(bus, relays)
