"""Delivers outbound messages to the browser: every open tab of the session.

The HTTP API answers ``POST /api/v1/chat`` itself (it waits for the turn); this
connector is what the durable outbox confirms delivery through for the web channel.
Inbound web messages are published by the HTTP/WS routes directly, so ``events``
yields nothing.

Delivery is acknowledged (:class:`~nexflow.gateway.connector.Acknowledging`): the reply
goes to the session's sockets as ``{"type": "reply", "outbox_id": N, ...}`` and counts
once a tab answers ``{"type": "ack", "outbox_id": N}`` (the exchange is described in
:mod:`nexflow.web.frames`). With no tab open, or none acknowledging within
:data:`ACK_TIMEOUT_S`, the item is :class:`~nexflow.gateway.connector.Parked` until a tab
of the session connects again. The reply of a turn whose ``POST /api/v1/chat`` caller is
still waiting for it goes out in that HTTP response and is recorded delivered when the turn
completes (``TurnRunner``); a reply nobody received waits, parked, for the page.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

from connectors.web.manifest import MANIFEST
from nexflow.bus.events import InboundEvent, Outbound
from nexflow.bus.streams import StreamHub
from nexflow.gateway.connector import ConnectorManifest, DeliveryError, Parked
from nexflow.web.frames import ack_topic

STATIC_DIR = Path(__file__).parent / "static"
ACK_TIMEOUT_S = 10.0


class WebConnector:
    def __init__(self, streams: StreamHub, ack_timeout_s: float = ACK_TIMEOUT_S) -> None:
        self._streams = streams
        self._ack_timeout_s = ack_timeout_s
        self._stopped = asyncio.Event()

    @property
    def manifest(self) -> ConnectorManifest:
        return MANIFEST

    async def start(self) -> None:
        self._stopped.clear()

    async def stop(self) -> None:
        self._stopped.set()

    async def events(self) -> AsyncIterator[InboundEvent]:
        await self._stopped.wait()
        return
        yield  # an async generator that ends when the connector stops

    async def send(self, out: Outbound) -> None:
        """Show ``out`` to the session's open tabs without waiting for them (the outbox
        uses :meth:`deliver`)."""
        if out.session_id:
            self._streams.publish(out.session_id, {"type": "reply", **out.model_dump(mode="json")})

    async def deliver(self, out: Outbound, outbox_id: int) -> None:
        session = out.session_id
        if not session:
            raise DeliveryError("a web message needs the session it goes to", retryable=False)
        if not self._streams.has_subscribers(session):
            raise Parked("no tab of the session is open")
        frame = {"type": "reply", "outbox_id": outbox_id, **out.model_dump(mode="json")}
        topic = ack_topic(session)
        signals = self._streams.subscribe(topic)  # before sending: no ack can be missed
        loop = asyncio.get_running_loop()
        try:
            self._streams.publish(session, frame)
            deadline = loop.time() + self._ack_timeout_s
            while True:
                try:
                    async with asyncio.timeout_at(deadline):
                        signal = await signals.get()
                except TimeoutError:
                    raise Parked(
                        f"no tab acknowledged it within {self._ack_timeout_s:g} s"
                    ) from None
                kind = signal.get("type")
                if kind == "ack" and signal.get("outbox_id") == outbox_id:
                    return
                if kind == "joined":  # a tab opened meanwhile: it gets the reply too
                    self._streams.publish(session, frame)
                    deadline = loop.time() + self._ack_timeout_s
                elif kind == "left" and not self._streams.has_subscribers(session):
                    raise Parked("the session's last tab closed")
        finally:
            self._streams.unsubscribe(topic, signals)
