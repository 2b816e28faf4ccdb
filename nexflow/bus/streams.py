"""Live per-session event streams (tokens, tool calls, replies) for WebSocket clients.

Publishing never blocks: each subscriber has a bounded queue, and a subscriber that
falls behind loses events (the reply itself is always in the session history).

Across replicas (storage on Postgres) a :class:`StreamRelay` is attached: what is
published here also reaches the sockets of the same key on the other replicas, and a key
counts as subscribed when a socket on any replica follows it
(:mod:`nexflow.gateway.stream_relay`). Without one (a single gateway) the hub is purely
in-process.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from typing import Any, Protocol

StreamEvent = dict[str, Any]


class StreamRelay(Protocol):
    """Carries a hub's events to the other replicas and tells which keys they watch."""

    def watch(self, key: str) -> None:
        """This replica has its first socket subscribed to ``key``."""
        ...

    def unwatch(self, key: str) -> None:
        """This replica's last socket of ``key`` is gone."""
        ...

    async def ready(self, key: str) -> None:
        """Return once events of ``key`` published elsewhere reach this replica."""
        ...

    def watched(self, key: str) -> bool:
        """A socket on another replica follows ``key``."""
        ...

    def publish(self, key: str, event: Mapping[str, Any]) -> None:
        """Send ``event`` to the other replicas' sockets of ``key``; never blocks."""
        ...


class StreamHub:
    relay_namespace = "stream"

    def __init__(self, queue_size: int = 2048) -> None:
        self._queue_size = queue_size
        self._subscribers: dict[str, set[asyncio.Queue[StreamEvent]]] = {}
        self._relay: StreamRelay | None = None

    def attach_relay(self, relay: StreamRelay) -> None:
        self._relay = relay

    def subscribe(self, session_id: str) -> asyncio.Queue[StreamEvent]:
        queue: asyncio.Queue[StreamEvent] = asyncio.Queue(self._queue_size)
        subs = self._subscribers.setdefault(session_id, set())
        if not subs and self._relay is not None:
            self._relay.watch(session_id)
        subs.add(queue)
        return queue

    async def ready(self, session_id: str) -> None:
        """After :meth:`subscribe`: wait until events published on other replicas reach
        the queue (at once on a single gateway)."""
        if self._relay is not None:
            await self._relay.ready(session_id)

    def unsubscribe(self, session_id: str, queue: asyncio.Queue[StreamEvent]) -> None:
        subs = self._subscribers.get(session_id)
        if subs is not None:
            subs.discard(queue)
            if not subs:
                del self._subscribers[session_id]
                if self._relay is not None:
                    self._relay.unwatch(session_id)

    def has_subscribers(self, session_id: str) -> bool:
        return session_id in self._subscribers or (
            self._relay is not None and self._relay.watched(session_id)
        )

    def publish(self, session_id: str, event: StreamEvent) -> None:
        self.deliver_remote(session_id, event)
        if self._relay is not None:
            self._relay.publish(session_id, event)

    def deliver_remote(self, session_id: str, event: StreamEvent) -> None:
        """Hand ``event`` to this process's subscribers only (also the relay's way in:
        an event published on another replica)."""
        for queue in self._subscribers.get(session_id, ()):
            if not queue.full():
                queue.put_nowait(event)
