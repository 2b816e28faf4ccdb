"""A cross-replica event bus for ephemeral fan-out: a browser connected to replica X sees
the tokens of a turn run on replica Y.

``await bus.publish("turn:42", {"delta": "Hel"})`` on one replica reaches every
subscription to ``turn:42`` on every replica (the publisher's own included)::

    async with bus.subscribe("turn:42") as sub:   # listening once this returns
        async for payload in sub:
            ...

Why a context manager that yields an async iterator, not a bare async generator or a
callback: the subscription is active when ``__aenter__`` returns, so a caller can
subscribe, then start (or look up) the turn without missing its first tokens; leaving the
block unsubscribes at once (a generator's ``finally`` waits for ``aclose()`` or the
garbage collector); and the consumer's own task reads at its own pace from a bounded
queue, where a callback would run on the bus's reader and stall every other channel.

**Ephemeral, at most once.** Nothing is stored: a message published while no one
listens, or while a replica's connection to the backend is down, is gone. When the
connection is lost the bus logs ``bus_connection_lost``, reconnects with backoff, listens
again, and every subscription raises :class:`~nexflow.scale.errors.MessagesLost` once at
the point of the gap; a subscriber more than ``queue_size`` messages behind gets the same
(the messages past its queue are dropped). After it, iterate again: the subscription
still works. What must not be lost (the turn's final text) is in storage; the stream is a
preview of it.

**Order.** Per channel, messages one publisher sends one after another arrive in that
order on every subscription; publishers running concurrently interleave.

Backends: :class:`LocalBus` (one process), :class:`~nexflow.scale.pg_bus.PostgresBus`
(``LISTEN/NOTIFY``), :class:`~nexflow.scale.redis_bus.RedisBus` (pub/sub);
:func:`bus_for` picks one from the configuration. Payloads are JSON objects (on every
backend, the local one included, so what works on one box works scaled out); a received
payload may be shared by the subscriptions of one process: treat it as read-only.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections import deque
from collections.abc import AsyncIterator, Mapping
from contextlib import AbstractAsyncContextManager
from typing import Any, Protocol

from nexflow.scale.errors import MessagesLost

Payload = dict[str, Any]

DEFAULT_QUEUE_SIZE = 1000


class Subscription:
    """The payloads published on ``channel`` since the subscription was made, in order
    (on a shared backend, also one published just before that may still be in flight).

    Iterating raises :class:`MessagesLost` where messages were missed (then iterate
    again) and ends when the subscription or the bus is closed."""

    def __init__(self, channel: str, queue_size: int = DEFAULT_QUEUE_SIZE) -> None:
        self.channel = channel
        self._size = max(1, queue_size)
        self._items: deque[Payload | MessagesLost] = deque()
        self._wake = asyncio.Event()
        self._closed = False

    def put(self, payload: Payload) -> None:
        """Queue ``payload`` (the bus's reader calls this; it never blocks)."""
        if self._closed:
            return
        if len(self._items) >= self._size:
            self.gap("subscriber too slow: its queue was full")
            return
        self._items.append(payload)
        self._wake.set()

    def gap(self, reason: str) -> None:
        """Mark that messages were lost here (one mark for a run of losses)."""
        if self._closed or (self._items and isinstance(self._items[-1], MessagesLost)):
            return
        self._items.append(MessagesLost(self.channel, reason))
        self._wake.set()

    def close(self) -> None:
        self._closed = True
        self._wake.set()

    def __aiter__(self) -> Subscription:
        return self

    async def __anext__(self) -> Payload:
        while not self._items:
            if self._closed:
                raise StopAsyncIteration
            self._wake.clear()
            await self._wake.wait()
        item = self._items.popleft()
        if isinstance(item, MessagesLost):
            raise item
        return item


class EventBus(Protocol):
    """Publish JSON objects to named channels; subscribe to a channel (module docstring)."""

    async def open(self) -> None:
        """Connect; raises :class:`~nexflow.scale.errors.ScaleUnavailable` if it cannot."""
        ...

    async def close(self) -> None:
        """Disconnect; open subscriptions end."""
        ...

    async def publish(self, channel: str, payload: Mapping[str, Any]) -> None:
        """Send ``payload`` to the channel's subscribers on every replica. Raises
        :class:`~nexflow.scale.errors.ScaleUnavailable` when the backend is down and
        :class:`~nexflow.scale.errors.PayloadTooLarge` above the backend's limit."""
        ...

    def subscribe(self, channel: str) -> AbstractAsyncContextManager[Subscription]:
        """A subscription to ``channel``, active once entered, removed on exit."""
        ...


class Hub:
    """The subscriptions of one process, by channel; a backend adds the transport.

    A backend overrides :meth:`_listen` (return once the backend delivers ``channel``
    to this process) and :meth:`_unlisten` (no subscriber is left), and calls
    :meth:`_deliver` and :meth:`_gap_all` from its reader."""

    def __init__(self, queue_size: int = DEFAULT_QUEUE_SIZE) -> None:
        self._queue_size = queue_size
        self._subs: dict[str, set[Subscription]] = {}

    @contextlib.asynccontextmanager
    async def subscribe(self, channel: str) -> AsyncIterator[Subscription]:
        sub = Subscription(channel, self._queue_size)
        self._subs.setdefault(channel, set()).add(sub)
        try:
            await self._listen(channel)
            yield sub
        finally:
            sub.close()
            subs = self._subs.get(channel)
            if subs is not None:
                subs.discard(sub)
                if not subs:
                    del self._subs[channel]
                    await self._unlisten(channel)

    async def _listen(self, channel: str) -> None:
        return None

    async def _unlisten(self, channel: str) -> None:
        return None

    def _deliver(self, channel: str, payload: Payload) -> None:
        for sub in tuple(self._subs.get(channel, ())):
            sub.put(payload)

    def _gap_all(self, reason: str) -> None:
        for subs in self._subs.values():
            for sub in subs:
                sub.gap(reason)

    def _close_all(self) -> None:
        for subs in self._subs.values():
            for sub in subs:
                sub.close()


def encode(payload: Mapping[str, Any], *, ascii_only: bool = False) -> str:
    """The wire form of a payload (compact JSON); TypeError if it is not JSON."""
    if not isinstance(payload, Mapping):
        raise TypeError(f"a bus payload is a JSON object, not {type(payload).__name__}")
    return json.dumps(payload, ensure_ascii=ascii_only, separators=(",", ":"))


class LocalBus(Hub):
    """One process: publish hands the payload to this process's subscriptions."""

    async def open(self) -> None:
        return None

    async def close(self) -> None:
        self._close_all()

    async def publish(self, channel: str, payload: Mapping[str, Any]) -> None:
        if channel in self._subs:
            self._deliver(channel, json.loads(encode(payload)))


def bus_for(storage_url: str, redis_url: str | None, *, name: str = "nexflow") -> EventBus:
    """The bus a deployment's configuration asks for (not yet open): Redis pub/sub when
    ``redis.url`` is set, else ``LISTEN/NOTIFY`` when storage is on Postgres, else one
    process's :class:`LocalBus`. ``name`` tells this replica's connections apart in
    ``pg_stat_activity`` / ``CLIENT LIST``."""
    if redis_url:
        from nexflow.scale.redis_bus import RedisBus

        return RedisBus(redis_url, name=name)
    if storage_url.startswith(("postgresql://", "postgres://")):
        from nexflow.scale.pg_bus import PostgresBus

        return PostgresBus(storage_url, name=name)
    return LocalBus()
