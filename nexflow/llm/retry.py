"""Retries with exponential backoff (:mod:`nexflow.backoff`) for provider errors that
are worth retrying."""

from __future__ import annotations

import asyncio
import random
from collections.abc import Callable

from nexflow.backoff import Backoff, Random, Sleep, retry
from nexflow.config.model import RetryConfig
from nexflow.llm.client import DeltaSink, LLMClient, LLMRequest, LLMResponse
from nexflow.llm.errors import LLMError

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
        rand: Random = random.random,
    ) -> None:
        self._inner = inner
        # Half of each delay is jitter, so sessions do not retry in lockstep.
        self._policy = Backoff(
            config.initial_backoff_s, config.max_backoff_s, jitter=0.5, max_attempts=config.attempts
        )
        self._sleep = sleep
        self._on_retry = on_retry
        self._rand = rand

    async def complete(self, request: LLMRequest, on_delta: DeltaSink | None = None) -> LLMResponse:
        return await retry(
            lambda: self._inner.complete(request, on_delta),
            self._policy,
            on=LLMError,
            when=lambda exc: exc.retryable,
            before_sleep=self._on_retry,
            sleep=self._sleep,
            rand=self._rand,
        )
