"""The host feed: real CPU load and the gateway's log lines into server-monitor panels.

One owned task wakes every ``panels.host_feed_s`` seconds, reads CPU usage from
``/proc/stat`` (busy share since the previous read) and takes the log lines the gateway
wrote meanwhile (from the :class:`~nexflow.observability.LogHub`), and feeds every panel
made from the ``server-monitor`` template. Other templates are left alone.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from pathlib import Path

import structlog

from nexflow.observability.logging import LogHub
from nexflow.panels.runtime.errors import PanelRuntimeError
from nexflow.panels.runtime.service import PanelService

log = structlog.get_logger("nexflow.panels.feed")
TEMPLATE = "server-monitor"
KEEP_LINES = 50


def read_cpu_times(stat: Path = Path("/proc/stat")) -> tuple[int, int] | None:
    """``(busy, total)`` jiffies of all CPUs, or None where /proc is not there."""
    try:
        first = stat.read_text().splitlines()[0].split()
    except (OSError, IndexError):
        return None
    values = [int(v) for v in first[1:]]
    idle = values[3] + (values[4] if len(values) > 4 else 0)
    return sum(values) - idle, sum(values)


def cpu_percent(before: tuple[int, int], after: tuple[int, int]) -> float:
    busy, total = after[0] - before[0], after[1] - before[1]
    return round(100.0 * busy / total, 1) if total > 0 else 0.0


def log_line(raw: str) -> str:
    try:
        data = json.loads(raw)
    except ValueError:
        return raw[:200]
    if not isinstance(data, dict):
        return raw[:200]
    level = str(data.get("level", "info")).upper()
    event = data.get("event", "")
    stamp = str(data.get("timestamp", ""))[11:19]
    return f"{stamp} {level} {event}".strip()[:200]


class HostFeed:
    def __init__(self, service: PanelService, logs: LogHub, interval_s: float) -> None:
        self._service = service
        self._logs = logs
        self._interval = interval_s
        self._task: asyncio.Task[None] | None = None
        self._stop = asyncio.Event()

    def start(self) -> None:
        if self._interval > 0 and self._task is None:
            self._stop.clear()
            self._task = asyncio.create_task(self._run(), name="nexflow-host-feed")

    async def stop(self) -> None:
        self._stop.set()
        if self._task is not None:
            await asyncio.gather(self._task, return_exceptions=True)
            self._task = None

    async def _run(self) -> None:
        queue = self._logs.subscribe()
        previous = read_cpu_times()
        try:
            while not self._stop.is_set():
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._stop.wait(), self._interval)
                current = read_cpu_times()
                lines = []
                while not queue.empty():
                    lines.append(log_line(queue.get_nowait()))
                load = cpu_percent(previous, current) if previous and current else 0.0
                previous = current
                await self.feed_once(load, lines)
        finally:
            self._logs.unsubscribe(queue)

    async def feed_once(self, cpu_load: float, lines: list[str]) -> int:
        """Feed every server-monitor panel; returns how many were updated."""
        fed = 0
        for record in self._service.instances():
            if record.template != TEMPLATE:
                continue
            old = record.state.get("logs")
            kept = [*(old if isinstance(old, list) else []), *lines][-KEEP_LINES:]
            try:
                await self._service.feed(record.id, {"cpu_load": cpu_load, "logs": kept})
                fed += 1
            except PanelRuntimeError as exc:
                log.warning("host_feed_failed", panel=record.id, error=exc.message)
        return fed
