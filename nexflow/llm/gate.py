"""The one budget gate in front of every model call (SPEC §6, "One budget gate").

:meth:`BudgetGate.client_for` returns the route's client (the :class:`ModelResolver`'s,
with its fallbacks, retries, size routes and cache) wrapped so that ``complete``

1. **reserves** the call's worst case against the user's budget
   (:meth:`~nexflow.llm.budget.Budgets.reserve`, one transaction): the prompt's estimated
   tokens (:func:`prompt_tokens`) plus the completion's ceiling (the largest ``max_tokens``
   of the profiles that may answer the route, else ``budgets.default_reserve_tokens``).
   At a limit it raises :class:`~nexflow.llm.errors.BudgetExhausted` and sends nothing;
2. **sends**;
3. **settles**: the reservation becomes the call's real usage (the ``llm_usage`` row the
   budgets and the statistics read), or is released when the call failed or the response
   cache answered (no provider call, no cost).

Scopes: ``user`` (a person's turn, the context pager's summaries) counts against the
user's daily and monthly limits; ``background`` (a workspace sync) against the day's
background budget, and it stops at the user's hard stop as well. With no limit that
applies, nothing is reserved and the usage is only written at settle time (one database
round trip per call instead of two).
"""

from __future__ import annotations

from typing import Protocol

import structlog

from nexflow.config.model import LLMConfig
from nexflow.llm import wire_json
from nexflow.llm.budget import BACKGROUND, USER, Budgets
from nexflow.llm.client import DeltaSink, LLMClient, LLMRequest, LLMResponse
from nexflow.llm.errors import BudgetExhausted
from nexflow.storage.base import StorageError
from nexflow.storage.repo_usage import UsageRow

log = structlog.get_logger("nexflow.llm.gate")


class ModelSource(Protocol):
    """Where the unbudgeted clients come from (:class:`~nexflow.llm.resolver.ModelResolver`)."""

    async def client_for(self, route: str = "execute") -> LLMClient: ...


class BudgetGate:
    """Budgeted model clients. Built once by the composition root; every model call of a
    turn, a page summary or a sync goes through :meth:`client_for`."""

    def __init__(self, models: ModelSource, budgets: Budgets, llm: LLMConfig | None = None) -> None:
        self._models = models
        self._budgets = budgets
        self._llm = llm
        self._ceilings: dict[str, int] = {}

    @property
    def budgets(self) -> Budgets:
        return self._budgets

    async def client_for(
        self,
        route: str,
        *,
        user_id: str,
        scope: str = USER,
        purpose: str = "",
        completion_tokens: int | None = None,
    ) -> LLMClient:
        """The client for ``route`` whose calls are budgeted for ``user_id`` in ``scope``
        (``"user"`` or ``"background"``). ``purpose`` names the work in the log;
        ``completion_tokens`` overrides the completion's share of each reservation."""
        if scope not in (USER, BACKGROUND):
            raise ValueError(f"unknown budget scope {scope!r}")
        inner = await self._models.client_for(route)
        completion = completion_tokens or self._ceiling(route)
        return GatedClient(inner, self._budgets, user_id, scope, purpose, completion)

    def _ceiling(self, route: str) -> int:
        ceiling = self._ceilings.get(route)
        if ceiling is None:
            default = self._budgets.default_reserve_tokens
            ceiling = self._ceilings[route] = completion_ceiling(self._llm, route, default)
        return ceiling


class GatedClient:
    """One route's client for one user and scope; see the module docstring."""

    def __init__(
        self,
        inner: LLMClient,
        budgets: Budgets,
        user_id: str,
        scope: str,
        purpose: str,
        completion_tokens: int,
    ) -> None:
        self._inner = inner
        self._budgets = budgets
        self._user_id = user_id
        self._scope = scope
        self._purpose = purpose
        self._completion = completion_tokens

    @property
    def model(self) -> str:
        return str(getattr(self._inner, "model", "unknown"))

    async def complete(self, request: LLMRequest, on_delta: DeltaSink | None = None) -> LLMResponse:
        tokens = prompt_tokens(request) + self._completion
        try:
            reservation = await self._budgets.reserve(self._user_id, self._scope, tokens)
        except BudgetExhausted as exc:
            log.info(
                "llm_budget_refused",
                user_id=self._user_id,
                scope=self._scope,
                purpose=self._purpose,
                period=exc.period,
                used=exc.used,
                limit=exc.limit,
                tokens=tokens,
            )
            raise
        try:
            response = await self._inner.complete(request, on_delta)
        except BaseException:
            try:
                await self._budgets.settle(reservation, None)
            except StorageError:  # it expires on its own (budget.RESERVATION_TTL_S)
                log.warning("llm_budget_release_failed", user_id=self._user_id, exc_info=True)
            raise
        usage = None
        if not response.cached:
            u = response.usage
            usage = UsageRow(response.model, 1, u.prompt_tokens, u.completion_tokens, u.cost_usd)
        await self._budgets.settle(reservation, usage)
        return response


def prompt_tokens(request: LLMRequest) -> int:
    """The prompt's tokens, estimated as the UTF-8 bytes of its messages and tools in the
    wire format (JSON) over four: what a provider counts, a little generously."""
    size = len(wire_json.dumps(list(request.messages)))
    if request.tools:
        size += len(wire_json.dumps(list(request.tools)))
    return (size + 3) // 4


def completion_ceiling(llm: LLMConfig | None, route: str, default: int) -> int:
    """The largest completion any profile that may answer ``route`` allows: the route's
    profile (chosen as :class:`~nexflow.llm.resolver.ModelResolver` does), the size-route
    profiles for it and their fallbacks; a profile without ``max_tokens`` counts
    ``default``. No configured profile (a probed Ollama): ``default``."""
    if llm is None or not llm.models:
        return default
    routes, models = llm.routes, llm.models
    first = routes.get(route) or routes.get("execute")
    if first is None:
        first = "default" if "default" in models else next(iter(models))
    names = {first, *(r.profile for r in llm.size_routes if not r.routes or route in r.routes)}
    for name in list(names):
        names.update(llm.fallbacks.get(name, ()))
    return max(models[n].max_tokens or default for n in names if n in models)


class Unbudgeted:
    """The gate's interface over plain clients, with no budget: for code built without
    the composition root (tests, benchmarks). The gateway always uses :class:`BudgetGate`."""

    def __init__(self, models: ModelSource) -> None:
        self._models = models

    async def client_for(
        self, route: str, *, user_id: str, scope: str = "user", purpose: str = ""
    ) -> LLMClient:
        return await self._models.client_for(route)
