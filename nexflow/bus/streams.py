"""Live per-session event streams (tokens, tool calls, replies) for WebSocket clients.

Publishing never blocks: each subscriber has a bounded queue, and a subscriber that
falls behind loses events (the reply itself is always in the session history).
"""

from __future__ import annotations

import asyncio
from typing import Any

StreamEvent = dict[str, Any]


class StreamHub:
    def __init__(self, queue_size: int = 2048) -> None:
        self._queue_size = queue_size
        self._subscribers: dict[str, set[asyncio.Queue[StreamEvent]]] = {}

    def subscribe(self, session_id: str) -> asyncio.Queue[StreamEvent]:
        queue: asyncio.Queue[StreamEvent] = asyncio.Queue(self._queue_size)
        self._subscribers.setdefault(session_id, set()).add(queue)
        return queue

    def unsubscribe(self, session_id: str, queue: asyncio.Queue[StreamEvent]) -> None:
        subs = self._subscribers.get(session_id)
        if subs is not None:
            subs.discard(queue)
            if not subs:
                del self._subscribers[session_id]

    def has_subscribers(self, session_id: str) -> bool:
        return session_id in self._subscribers

    def publish(self, session_id: str, event: StreamEvent) -> None:
        for queue in self._subscribers.get(session_id, ()):
            if not queue.full():
                queue.put_nowait(event)
