"""The one backoff schedule and retry helper behind every retry loop in Nexflow.

:class:`Backoff` is a frozen policy: the wait after failed attempt ``n`` (1-based) is
``base_s * factor**(n-1)``, capped at ``cap_s``, then scaled by a jitter factor in
``[1 - jitter, 1)`` drawn from an injected random source; a platform's Retry-After,
when given, replaces it. :meth:`Backoff.gives_up` says when to stop (``max_attempts``
in all, or ``deadline_s`` after the first attempt started).

Call sites come in three shapes, all on the same schedule:

- a call retried in place (the LLM client): :func:`retry`;
- a durable schedule (outbox ``next_attempt_at``, an MCP server's restart time, a flow
  node's durable sleep): :meth:`Backoff.delay` of the stored attempt count;
- a supervised reconnect loop (Telegram, Discord, email, the skills watcher): a count of
  failures in a row, reset when the connection worked, :meth:`Backoff.delay` of it and
  :func:`pause` to wait for it or the stop event.

No exceptions of its own: :func:`retry` re-raises the call's last error, and never
catches cancellation.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TypeVar

T = TypeVar("T")
E = TypeVar("E", bound=Exception)

Random = Callable[[], float]  # uniform in [0, 1), like random.random
Sleep = Callable[[float], Awaitable[None]]


@dataclass(frozen=True, slots=True)
class Backoff:
    """Exponential backoff: ``base_s * factor**(attempt-1)`` capped at ``cap_s``.

    ``jitter`` is the fraction of each delay that is random (0: none; 0.5: between half
    and all of it), so many clients failing together do not retry in lockstep.
    ``max_attempts`` counts attempts in all (None: no limit); ``deadline_s`` is the time
    after the first attempt started past which no new attempt starts (None: no limit).
    """

    base_s: float
    cap_s: float
    factor: float = 2.0
    jitter: float = 0.0
    max_attempts: int | None = None
    deadline_s: float | None = None

    def __post_init__(self) -> None:
        if self.base_s < 0 or self.cap_s < 0 or self.factor < 1:
            raise ValueError("backoff needs base_s >= 0, cap_s >= 0 and factor >= 1")
        if not 0 <= self.jitter <= 1:
            raise ValueError("backoff jitter is a fraction between 0 and 1")
        if self.max_attempts is not None and self.max_attempts < 1:
            raise ValueError("backoff max_attempts must be at least 1")

    def delay(
        self, attempt: int, *, retry_after: float | None = None, rand: Random = random.random
    ) -> float:
        """Seconds to wait after failed attempt ``attempt`` (1-based). A positive
        ``retry_after`` (what the platform asked for) is used as it is instead."""
        if retry_after is not None and retry_after > 0:
            return retry_after
        try:
            wait = min(self.cap_s, self.base_s * self.factor ** (attempt - 1))
        except OverflowError:  # thousands of failures in a row
            wait = self.cap_s
        if self.jitter:
            wait *= 1 - self.jitter + self.jitter * rand()
        return wait

    def gives_up(self, attempt: int, elapsed_s: float = 0.0) -> bool:
        """True when failed attempt ``attempt`` was the last one: ``max_attempts`` are
        used up, or ``elapsed_s`` since the first attempt started reached ``deadline_s``."""
        if self.max_attempts is not None and attempt >= self.max_attempts:
            return True
        return self.deadline_s is not None and elapsed_s >= self.deadline_s


async def retry(
    call: Callable[[], Awaitable[T]],
    policy: Backoff,
    *,
    on: type[E] | tuple[type[E], ...],
    when: Callable[[E], bool] | None = None,
    before_sleep: Callable[[E, int, float], None] | None = None,
    sleep: Sleep = asyncio.sleep,
    rand: Random = random.random,
    clock: Callable[[], float] = time.monotonic,
) -> T:
    """Await ``call()`` until it returns, retrying errors of the types ``on`` (for which
    ``when`` is true) on ``policy``'s schedule; anything else, and the last error once
    ``policy`` gives up, is raised as it is. ``before_sleep(error, attempt, delay)`` is
    told of each retry (for logs and metrics)."""
    started = clock()
    attempt = 1
    while True:
        try:
            return await call()
        except on as exc:
            if (when is not None and not when(exc)) or policy.gives_up(attempt, clock() - started):
                raise
            wait = policy.delay(attempt, rand=rand)
            if before_sleep is not None:
                before_sleep(exc, attempt, wait)
        await sleep(wait)
        attempt += 1


async def pause(seconds: float, stop: asyncio.Event) -> None:
    """Wait ``seconds``, or less if ``stop`` is set meanwhile (a reconnect loop's wait)."""
    with contextlib.suppress(TimeoutError):
        async with asyncio.timeout(seconds):
            await stop.wait()
