"""The channel interface every connector implements, and its dependency-free manifest."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncGenerator, AsyncIterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol, TypeVar, runtime_checkable

from nexflow.bus.events import InboundEvent, Outbound, OutboundKind

if TYPE_CHECKING:
    from nexflow.scale.leader import Leadership

T = TypeVar("T")


async def handed_out(queue: asyncio.Queue[T], stopped: asyncio.Event) -> AsyncGenerator[T, None]:
    """Yield what a connector's receiver queued, until ``stopped``: the body of an
    ``events()`` whose receiver runs in its own task.

    ``queue.task_done()`` is called once the consumer came back for the next item (the
    item is published by then, so a receiver that ``join()``s, or commits an offset after
    it, never runs ahead of the inbox). An item taken from the queue but never handed out
    (the consumer stopped first) goes back into it. Close it with ``contextlib.aclosing``.
    """
    stop = asyncio.create_task(stopped.wait())
    getter: asyncio.Task[T] | None = None
    try:
        while not stopped.is_set():
            getter = asyncio.create_task(queue.get())
            await asyncio.wait({getter, stop}, return_when=asyncio.FIRST_COMPLETED)
            if not getter.done():
                return
            item, getter = getter.result(), None
            yield item
            queue.task_done()
    finally:
        stop.cancel()
        if getter is not None and not getter.cancel() and not getter.cancelled():
            queue.put_nowait(getter.result())  # taken but never handed out
            queue.task_done()


class DeliveryError(Exception):
    """``send`` failed. ``retryable`` is False when the platform will never accept it
    (bot blocked, chat deleted); the outbox then marks it failed with ``reason``."""

    def __init__(
        self, reason: str, *, retryable: bool = True, retry_after_s: float | None = None
    ) -> None:
        super().__init__(reason)
        self.reason = reason
        self.retryable = retryable
        self.retry_after_s = retry_after_s


class Parked(DeliveryError):
    """Nobody is there to acknowledge the message (the web: no open tab of its session).

    Not a failure: the outbox parks the item (no attempt counted, no failure metric)
    until the session's client comes back and the item is un-parked
    (:meth:`~nexflow.storage.parking.OutboxParking.unpark_session`)."""

    def __init__(self, reason: str = "nobody is there to acknowledge it") -> None:
        super().__init__(reason)


@dataclass(frozen=True, slots=True)
class ConnectorManifest:
    """What the gateway knows of a connector without importing its SDK."""

    name: str
    module: str
    renders: frozenset[OutboundKind]
    description: str = ""


class Connector(Protocol):
    """``start``/``stop`` its platform client, yield :class:`InboundEvent` from ``events``,
    deliver :data:`Outbound` with ``send`` (raise :class:`DeliveryError` on failure)."""

    @property
    def manifest(self) -> ConnectorManifest: ...

    async def start(self) -> None: ...
    async def stop(self) -> None: ...
    def events(self) -> AsyncIterator[InboundEvent]: ...
    async def send(self, out: Outbound) -> None: ...


@runtime_checkable
class Drafting(Protocol):
    """A connector that can show a reply while the model writes it (edited in place, rate
    limited by the connector); the next ``send`` to the chat replaces the draft."""

    async def draft(self, chat_id: str, text: str) -> None: ...


@runtime_checkable
class Elected(Protocol):
    """A connector whose receiving side one replica of a deployment runs at a time: a
    Telegram long poll per bot token (a second poller gets 409), a Discord gateway
    connection per shard. The composition root calls :meth:`elect` before ``start``; the
    connector then receives only while it leads its names (``lead`` in
    :mod:`nexflow.scale.leader`) and takes over when the leader dies. Sending works on
    every replica, leader or not. Without ``elect`` (one process, tests) it just receives.
    """

    def elect(self, leadership: Leadership) -> None: ...


@runtime_checkable
class Acknowledging(Protocol):
    """A connector whose deliveries count only once the receiving client acknowledges
    them (the web page acknowledges each reply by its outbox id). The outbox calls
    ``deliver`` instead of ``send``: it returns once the item is acknowledged, raises
    :class:`Parked` when nobody is there to acknowledge it, or :class:`DeliveryError`.
    Its items are ordered per session (``Outbound.session_id``), not per chat."""

    async def deliver(self, out: Outbound, outbox_id: int) -> None: ...
