"""Fallback chains and per-profile circuit breakers, as an :class:`LLMClient` wrapper.

``llm.fallbacks: {strong: [cheap]}``: when the ``strong`` profile fails with
:class:`ProviderUnavailable` (after its own retries; a per-request timeout from the
profile's ``timeout_s`` surfaces as one) the next profile of its chain answers. A
profile whose breaker is open is skipped without a request; after ``cooldown_s`` one
probe call goes through (half-open) and its outcome closes or re-opens the breaker.
:class:`ProviderRejected` (bad key, bad request) is not a provider outage: it is raised
at once and does not count against the breaker.

The breaker is this process's :class:`CircuitBreaker` (one gateway: no await, no round
trip) or a shared :class:`~nexflow.scale.limits.Breaker` (replicas on Postgres, built by
:mod:`nexflow.scale.wiring`), so a profile one replica found dead is skipped by all. When
the shared backend cannot be reached the call goes ahead (logged): a breaker only saves
requests, it must not stop the ones that would work.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Literal

import structlog

from nexflow.config.model import BreakerConfig
from nexflow.llm.client import DeltaSink, LLMClient, LLMRequest, LLMResponse
from nexflow.llm.errors import LLMError, ProviderUnavailable
from nexflow.scale.errors import ScaleUnavailable

if TYPE_CHECKING:
    from nexflow.scale.limits import Breaker

log = structlog.get_logger("nexflow.llm")

OnFallback = Callable[[str, str, ProviderUnavailable], None]
"""``on_fallback(failed_profile, next_profile, error)``: for logs."""


@dataclass(slots=True)
class _State:
    failures: int = 0
    opened_at: float | None = None
    probing: bool = False


class CircuitBreaker:
    """Consecutive-failure breakers keyed by profile name; state lives in memory."""

    def __init__(self, config: BreakerConfig, clock: Callable[[], float] = time.monotonic) -> None:
        self._config = config
        self._clock = clock
        self._states: dict[str, _State] = {}

    def allow(self, key: str) -> bool:
        """May a call go to ``key`` now? Half-open lets exactly one probe through."""
        state = self._states.get(key)
        if state is None or state.opened_at is None:
            return True
        if state.probing or self._clock() - state.opened_at < self._config.cooldown_s:
            return False
        state.probing = True
        return True

    def success(self, key: str) -> None:
        self._states.pop(key, None)

    def failure(self, key: str) -> None:
        state = self._states.setdefault(key, _State())
        state.failures += 1
        if state.probing or state.failures >= self._config.failures:
            state.opened_at = self._clock()
        state.probing = False

    def release(self, key: str) -> None:
        if (state := self._states.get(key)) is not None:
            state.probing = False

    def state(self, key: str) -> str:
        """``closed``, ``open`` or ``half-open`` (for ``/status`` and tests)."""
        s = self._states.get(key)
        if s is None or s.opened_at is None:
            return "closed"
        if s.probing or self._clock() - s.opened_at >= self._config.cooldown_s:
            return "half-open"
        return "open"

    def open_profiles(self) -> list[str]:
        return sorted(k for k in self._states if self.state(k) != "closed")


@dataclass(frozen=True, slots=True)
class Link:
    """One profile of a chain: its name (the breaker key), model string and client."""

    profile: str
    model: str
    client: LLMClient


class FallbackClient:
    """Tries each link of the chain in order, skipping those whose breaker is open."""

    def __init__(
        self,
        chain: Sequence[Link],
        breaker: CircuitBreaker | Breaker,
        on_fallback: OnFallback | None = None,
    ) -> None:
        if not chain:
            raise ValueError("a fallback chain needs at least one profile")
        self._chain = tuple(chain)
        self._local = breaker if isinstance(breaker, CircuitBreaker) else None
        self._shared = None if isinstance(breaker, CircuitBreaker) else breaker
        self._on_fallback = on_fallback

    @property
    def model(self) -> str:
        return self._chain[0].model

    async def complete(self, request: LLMRequest, on_delta: DeltaSink | None = None) -> LLMResponse:
        primary = self._chain[0]
        failed: ProviderUnavailable | None = None
        failed_profile = ""
        for index, link in enumerate(self._chain):
            if not await self._allow(link.profile):
                continue
            if failed is not None and self._on_fallback is not None:
                self._on_fallback(failed_profile, link.profile, failed)
            try:
                response = await link.client.complete(request, on_delta)
            except ProviderUnavailable as exc:
                await self._record("failure", link.profile)
                failed, failed_profile = exc, link.profile
                continue
            except LLMError:
                await self._record("success", link.profile)  # it answered (a refusal)
                raise
            except BaseException:  # cancelled mid-probe: let the next call probe instead
                await self._record("release", link.profile)
                raise
            await self._record("success", link.profile)
            if index == 0:
                return response
            return replace(response, fallback_from=primary.model)
        if failed is not None:
            raise failed
        names = ", ".join(link.profile for link in self._chain)
        raise ProviderUnavailable(
            f"every model profile for this request ({names}) failed repeatedly and is paused "
            "for a moment (circuit breaker open)",
            model=primary.model,
        )

    async def _allow(self, profile: str) -> bool:
        if self._local is not None:
            return self._local.allow(profile)
        assert self._shared is not None
        try:
            return await self._shared.allow(profile)
        except ScaleUnavailable as exc:  # its own message says which backend and why
            log.warning("breaker_unshared", profile=profile, error=str(exc))
            return True

    async def _record(self, outcome: Literal["success", "failure", "release"], key: str) -> None:
        if self._local is not None:
            if outcome == "success":
                self._local.success(key)
            elif outcome == "failure":
                self._local.failure(key)
            else:
                self._local.release(key)
            return
        assert self._shared is not None
        try:
            if outcome == "success":
                await self._shared.success(key)
            elif outcome == "failure":
                await self._shared.failure(key)
            else:
                await self._shared.release(key)
        except ScaleUnavailable as exc:
            log.warning("breaker_unshared", profile=key, outcome=outcome, error=str(exc))
