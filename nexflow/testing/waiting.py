"""Waiting in tests for something another task, thread or process makes true."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable


async def wait_until(
    check: Callable[[], object], within: float = 10.0, every: float = 0.02
) -> float:
    """Call ``check`` every ``every`` seconds until it returns something true; the
    seconds that took. Raises ``TimeoutError`` after ``within`` seconds."""
    started = time.monotonic()
    async with asyncio.timeout(within):
        while True:
            if check():
                return time.monotonic() - started
            await asyncio.sleep(every)
