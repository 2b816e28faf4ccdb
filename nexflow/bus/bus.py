"""Per-session ordered, cross-session parallel execution with bounded concurrency.

Each session key has a lane (a FIFO). A key sits in the ready queue at most once,
and only one worker holds it at a time, so a session's messages are handled in
order while different sessions run in parallel on ``concurrency`` workers. The
total number of waiting jobs is capped: :meth:`Bus.submit` raises
:class:`~nexflow.bus.errors.Overloaded` past ``max_pending``.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Awaitable, Callable
from typing import Generic, TypeVar

import structlog

from nexflow.bus.errors import Overloaded

J = TypeVar("J")
log = structlog.get_logger("nexflow.bus")


class Bus(Generic[J]):
    def __init__(
        self,
        process: Callable[[J], Awaitable[None]],
        *,
        concurrency: int,
        max_pending: int,
        on_depth: Callable[[int], None] | None = None,
    ) -> None:
        self._process = process
        self._concurrency = concurrency
        self._max_pending = max_pending
        self._on_depth = on_depth
        self._lanes: dict[str, deque[J]] = {}
        self._ready: asyncio.Queue[str] = asyncio.Queue()
        self._workers: list[asyncio.Task[None]] = []
        self._pending = 0
        self._idle = asyncio.Event()
        self._idle.set()

    @property
    def pending(self) -> int:
        return self._pending

    def start(self) -> None:
        if self._workers:
            return
        self._workers = [
            asyncio.create_task(self._work(), name=f"nexflow-bus-{i}")
            for i in range(self._concurrency)
        ]

    async def stop(self, drain_timeout_s: float = 5.0) -> None:
        """Wait for in-flight work (bounded), then cancel the workers."""
        try:
            await asyncio.wait_for(self._idle.wait(), drain_timeout_s)
        except TimeoutError:
            log.warning("bus_stop_timeout", pending=self._pending)
        for task in self._workers:
            task.cancel()
        await asyncio.gather(*self._workers, return_exceptions=True)
        self._workers = []

    def submit(self, key: str, job: J) -> None:
        if self._pending >= self._max_pending:
            raise Overloaded("The gateway is busy right now; please try again in a moment.")
        lane = self._lanes.get(key)
        if lane is None:
            lane = self._lanes[key] = deque()
            self._ready.put_nowait(key)
        lane.append(job)
        self._pending += 1
        self._idle.clear()
        self._report()

    def _report(self) -> None:
        if self._on_depth is not None:
            self._on_depth(self._pending)

    async def _work(self) -> None:
        while True:
            key = await self._ready.get()
            lane = self._lanes[key]
            job = lane.popleft()
            try:
                await self._process(job)
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("bus_job_failed", session=key)
            finally:
                self._pending -= 1
                if lane:
                    self._ready.put_nowait(key)
                else:
                    del self._lanes[key]
                if self._pending == 0:
                    self._idle.set()
                self._report()
