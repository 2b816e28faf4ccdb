"""Delivers outbound messages to the browser: every WebSocket following the session.

The HTTP API answers ``POST /api/v1/chat`` itself (it waits for the turn); this
connector is what the durable outbox confirms delivery through for the web channel.
Inbound web messages are published by the HTTP/WS routes directly, so ``events``
yields nothing.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

from connectors.web.manifest import MANIFEST
from nexflow.bus.events import InboundEvent, Outbound
from nexflow.bus.streams import StreamHub
from nexflow.gateway.connector import ConnectorManifest

STATIC_DIR = Path(__file__).parent / "static"


class WebConnector:
    def __init__(self, streams: StreamHub) -> None:
        self._streams = streams
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
        if out.session_id:
            self._streams.publish(out.session_id, {"type": "reply", **out.model_dump()})
