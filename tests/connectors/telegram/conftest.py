from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest

from connectors.telegram.config import TelegramConfig
from connectors.telegram.connector import TelegramConnector
from nexflow.bus.events import InboundEvent
from nexflow.testing.fake_telegram import FakeTelegram


class Running:
    """A started connector whose events are drained into a queue, as the gateway's pump
    does (the connector confirms updates only once its events are consumed)."""

    def __init__(self, connector: TelegramConnector) -> None:
        self.connector = connector
        self.received: asyncio.Queue[InboundEvent] = asyncio.Queue()
        self._pump: asyncio.Task[None] | None = None

    async def start(self) -> None:
        await self.connector.start()
        self._pump = asyncio.create_task(self._drain())

    async def _drain(self) -> None:
        async for event in self.connector.events():
            await self.received.put(event)

    async def event(self, within: float = 3.0) -> InboundEvent:
        async with asyncio.timeout(within):
            return await self.received.get()

    async def nothing(self, within: float = 0.3) -> None:
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(within):
                event = await self.received.get()
                raise AssertionError(f"unexpected event {event}")

    async def stop(self) -> None:
        await self.connector.stop()
        if self._pump is not None:
            self._pump.cancel()
            await asyncio.gather(self._pump, return_exceptions=True)


@pytest.fixture
async def fake() -> AsyncIterator[FakeTelegram]:
    async with FakeTelegram() as server:
        yield server


StartFn = Callable[..., Awaitable[Running]]


@pytest.fixture
async def telegram(fake: FakeTelegram, tmp_path: Path) -> AsyncIterator[StartFn]:
    """``await telegram(**config overrides)`` → a running connector against ``fake``."""
    running: list[Running] = []

    async def start(**overrides: Any) -> Running:
        values: dict[str, Any] = {
            "bot_token": fake.token,
            "api_server": fake.base_url,
            "poll_timeout_s": 1,
            "watchdog_s": 0.5,
            "backoff_initial_s": 0.05,
            "backoff_max_s": 0.2,
            "typing": False,
            **overrides,
        }
        run = Running(TelegramConnector(TelegramConfig(**values), tmp_path / "files"))
        await run.start()
        running.append(run)
        return run

    yield start
    for run in running:
        await run.stop()
