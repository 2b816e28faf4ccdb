"""Advances a wasmtime engine's epoch while sandboxed calls are running.

Wall-time limits are epoch deadlines: a call that sets a deadline of ``n``
ticks traps ``n`` ticks later. The thread ticks while calls are active and for
``linger_s`` after the last one (waking an idle thread per call costs more than
the call itself), then sleeps until the next call; it stops on ``close()``.
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager

import wasmtime

TICK_S = 0.010
LINGER_S = 2.0


class EpochTicker:
    def __init__(
        self, engine: wasmtime.Engine, tick_s: float = TICK_S, linger_s: float = LINGER_S
    ) -> None:
        self._engine = engine
        self._tick_s = tick_s
        self._linger_s = linger_s
        self._cond = threading.Condition()
        self._active = 0
        self._idle = False
        self._last_active = 0.0
        self._closed = False
        self._thread: threading.Thread | None = None

    def deadline_ticks(self, wall_time_ms: int) -> int:
        """Ticks to pass to ``Store.set_epoch_deadline`` for at least ``wall_time_ms``."""
        return math.ceil(wall_time_ms / (self._tick_s * 1000)) + 1

    @contextmanager
    def active(self) -> Iterator[None]:
        with self._cond:
            if self._closed:
                raise RuntimeError("the sandbox engine is closed")
            self._active += 1
            if self._thread is None:
                self._thread = threading.Thread(
                    target=self._run, name="nexflow-sandbox-epoch", daemon=True
                )
                self._thread.start()
            elif self._idle:
                # Only an idle thread is woken; notifying a ticking thread would
                # tick early and cut other calls' wall time short.
                self._idle = False
                self._cond.notify_all()
        try:
            yield
        finally:
            with self._cond:
                self._active -= 1
                self._last_active = time.monotonic()

    def close(self) -> None:
        with self._cond:
            self._closed = True
            self._cond.notify_all()
            thread = self._thread
        if thread is not None:
            thread.join()

    def _run(self) -> None:
        while True:
            with self._cond:
                lingering = time.monotonic() - self._last_active < self._linger_s
                while self._active == 0 and not lingering and not self._closed:
                    self._idle = True
                    self._cond.wait()
                    lingering = True
                self._idle = False
                if self._closed:
                    return
                # Sleeping on the condition lets close() wake us immediately.
                self._cond.wait(self._tick_s)
                if self._closed:
                    return
            self._engine.increment_epoch()
