"""Retries with exponential backoff for provider errors that are worth retrying."""

from __future__ import annotations

import asyncio
import random
from collections.abc import Awaitable, Callable

from nexflow.config.model import RetryConfig
from nexflow.llm.client import DeltaSink, LLMClient, LLMRequest, LLMResponse
from nexflow.llm.errors import LLMError

Sleep = Callable[[float], Awaitable[None]]
OnRetry = Callable[[LLMError, int, float], None]


class RetryingClient:
    """Wraps a client; retries :class:`ProviderUnavailable` up to ``config.attempts`` times."""

    def __init__(
        self,
        inner: LLMClient,
        config: RetryConfig,
        *,
        sleep: Sleep = asyncio.sleep,
        on_retry: OnRetry | None = None,
    ) -> None:
        self._inner = inner
        self._config = config
        self._sleep = sleep
        self._on_retry = on_retry

    async def complete(self, request: LLMRequest, on_delta: DeltaSink | None = None) -> LLMResponse:
        attempt = 1
        while True:
            try:
                return await self._inner.complete(request, on_delta)
            except LLMError as exc:
                if not exc.retryable or attempt >= self._config.attempts:
                    raise
                delay = min(
                    self._config.max_backoff_s,
                    self._config.initial_backoff_s * 2 ** (attempt - 1),
                )
                delay *= 0.5 + random.random() / 2  # jitter, so sessions do not retry in lockstep
                if self._on_retry is not None:
                    self._on_retry(exc, attempt, delay)
                await self._sleep(delay)
                attempt += 1
