"""structlog set-up: one JSON object per line, secrets redacted, context bound per message.

:class:`LogHub` fans log lines out to live subscribers (``WS /ws/logs``) through
bounded queues: a slow subscriber loses lines, it never slows the gateway.
"""

from __future__ import annotations

import asyncio
import logging
import re
import sys
from collections.abc import MutableMapping
from typing import Any, TextIO

import structlog

_SECRET_KEYS = re.compile(r"(token|api_key|apikey|secret|password|authorization)", re.I)
_BEARER = re.compile(r"(Bearer\s+)[A-Za-z0-9._~+/=-]+")


def _redact(_: Any, __: str, event: MutableMapping[str, Any]) -> MutableMapping[str, Any]:
    for key, value in list(event.items()):
        if _SECRET_KEYS.search(key) and value is not None:
            event[key] = "***"
        elif isinstance(value, str) and "Bearer" in value:
            event[key] = _BEARER.sub(r"\1***", value)
    return event


class LogHub:
    """Live log subscribers. ``publish`` never blocks; full queues drop the line."""

    def __init__(self, queue_size: int = 1000) -> None:
        self._queue_size = queue_size
        self._subscribers: set[asyncio.Queue[str]] = set()

    def subscribe(self) -> asyncio.Queue[str]:
        queue: asyncio.Queue[str] = asyncio.Queue(self._queue_size)
        self._subscribers.add(queue)
        return queue

    def unsubscribe(self, queue: asyncio.Queue[str]) -> None:
        self._subscribers.discard(queue)

    def publish(self, line: str) -> None:
        for queue in self._subscribers:
            if not queue.full():
                queue.put_nowait(line)


class _HubWriter:
    """A text stream that writes to the real stream and publishes each line."""

    def __init__(self, stream: TextIO, hub: LogHub | None) -> None:
        self._stream = stream
        self._hub = hub

    def msg(self, message: str) -> None:
        self._stream.write(message + "\n")
        self._stream.flush()
        if self._hub is not None:
            self._hub.publish(message)

    debug = info = warning = warn = error = critical = exception = fatal = log = msg


def configure_logging(level: str = "info", fmt: str = "json", hub: LogHub | None = None) -> None:
    """Configure structlog for the process. Called once, by the composition root."""
    renderer: Any = (
        structlog.processors.JSONRenderer()
        if fmt == "json"
        else structlog.dev.ConsoleRenderer(colors=False)
    )
    writer = _HubWriter(sys.stderr, hub)
    structlog.configure(
        processors=[
            structlog.contextvars.merge_contextvars,
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso", utc=True),
            _redact,
            structlog.processors.format_exc_info,
            renderer,
        ],
        wrapper_class=structlog.make_filtering_bound_logger(logging.getLevelName(level.upper())),
        logger_factory=lambda *_: writer,
        cache_logger_on_first_use=False,
    )
