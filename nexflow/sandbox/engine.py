"""``SandboxEngine``: the public entry point for running panel JavaScript."""

from __future__ import annotations

import asyncio
import functools
import time
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from types import TracebackType
from typing import TypeVar

from nexflow.sandbox.cache import CacheStatus
from nexflow.sandbox.capabilities import HostCalls
from nexflow.sandbox.errors import WallTimeExceeded
from nexflow.sandbox.guest import DEFAULT_GUEST_PATH
from nexflow.sandbox.models import (
    Capabilities,
    EvalResult,
    HandlerOutcome,
    JSONValue,
    SandboxLimits,
)
from nexflow.sandbox.protocol import decode_batch, decode_handler, encode_batch, encode_handler
from nexflow.sandbox.runtime import MODE_BATCH, MODE_HANDLER, GuestRuntime

T = TypeVar("T")

# How long the async wrappers wait beyond the wall-time limit before giving up
# on the worker thread (the epoch deadline normally stops the guest first).
ASYNC_GRACE_S = 2.0


class SandboxEngine:
    """Runs NXML handlers and binding expressions in QuickJS-on-wasmtime.

    One wasmtime Engine (fuel + epoch interruption) per object; every call gets
    a fresh Store and instance, so nothing leaks from one call to the next.
    ``cache_dir`` holds precompiled code (``None`` compiles on every start).
    The sync methods block; the ``a*`` methods run them on this engine's own
    bounded thread pool. ``close()`` stops the pool and the epoch thread.
    """

    def __init__(
        self,
        *,
        cache_dir: Path | None = None,
        guest_path: Path = DEFAULT_GUEST_PATH,
        max_workers: int = 2,
        default_limits: SandboxLimits | None = None,
    ) -> None:
        self._runtime = GuestRuntime(guest_path, cache_dir)
        self._limits = default_limits or SandboxLimits()
        self._executor = ThreadPoolExecutor(
            max_workers=max_workers, thread_name_prefix="nexflow-sandbox"
        )

    @property
    def cache_status(self) -> CacheStatus:
        """How the module was obtained: cache hit, compiled, rebuilt, uncached."""
        return self._runtime.cache_status

    def run_handler(
        self,
        source: str,
        state: Mapping[str, JSONValue],
        args: Mapping[str, JSONValue],
        limits: SandboxLimits | None = None,
        capabilities: Capabilities | None = None,
    ) -> HandlerOutcome:
        """Run a ``<Handler>`` body against a copy of ``state``.

        In the script: ``$state`` (mutable copy), ``$args`` and each arg whose
        name is an identifier, ``$emit(event, payload)``, ``$view.method(...)``,
        ``$view.Component.method(...)``, ``console.log``, and ``$fs.read`` /
        ``$http.get`` (refused unless ``capabilities`` grant them). Raises a
        ``SandboxError`` subclass on any failure; the caller keeps its state.
        """
        limits = limits or self._limits
        payload = encode_handler(source, state, args)
        host = HostCalls(capabilities or Capabilities(), _deadline(limits))
        reply = self._runtime.call(MODE_HANDLER, payload, limits, host)
        if host.denied is not None:
            raise host.denied
        return decode_handler(reply.output, reply.fuel_used)

    def eval_batch(
        self,
        expressions: Sequence[str],
        state: Mapping[str, JSONValue],
        limits: SandboxLimits | None = None,
    ) -> list[EvalResult]:
        """Evaluate binding expressions (``$state.cpu_load > 80 ? 'down' : 'up'``)
        against a frozen ``$state`` in one instance. A JS error in one expression
        is that expression's ``EvalResult``; running out of fuel, time or memory
        fails the whole batch. No capabilities are available to bindings."""
        limits = limits or self._limits
        payload = encode_batch(expressions, state)
        host = HostCalls(Capabilities(), _deadline(limits))
        reply = self._runtime.call(MODE_BATCH, payload, limits, host)
        return decode_batch(reply.output, len(expressions))

    async def arun_handler(
        self,
        source: str,
        state: Mapping[str, JSONValue],
        args: Mapping[str, JSONValue],
        limits: SandboxLimits | None = None,
        capabilities: Capabilities | None = None,
    ) -> HandlerOutcome:
        """``run_handler`` on the engine's worker threads, with a timeout."""
        limits = limits or self._limits
        call = functools.partial(self.run_handler, source, state, args, limits, capabilities)
        return await self._offload(call, limits)

    async def aeval_batch(
        self,
        expressions: Sequence[str],
        state: Mapping[str, JSONValue],
        limits: SandboxLimits | None = None,
    ) -> list[EvalResult]:
        """``eval_batch`` on the engine's worker threads, with a timeout."""
        limits = limits or self._limits
        call = functools.partial(self.eval_batch, expressions, state, limits)
        return await self._offload(call, limits)

    async def _offload(self, call: Callable[[], T], limits: SandboxLimits) -> T:
        loop = asyncio.get_running_loop()
        future = loop.run_in_executor(self._executor, call)
        timeout = limits.wall_time_ms / 1000 + ASYNC_GRACE_S
        try:
            return await asyncio.wait_for(future, timeout)
        except TimeoutError as e:
            # Queueing behind other calls or a slow host call; the guest itself
            # is stopped by its epoch deadline once it runs.
            raise WallTimeExceeded(f"no result within {timeout:.1f} s") from e

    def close(self) -> None:
        self._executor.shutdown(wait=True, cancel_futures=True)
        self._runtime.ticker.close()

    def __enter__(self) -> SandboxEngine:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()


def _deadline(limits: SandboxLimits) -> float:
    return time.monotonic() + limits.wall_time_ms / 1000
