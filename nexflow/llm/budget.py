"""Token budgets: per user per UTC day and month, and a separate daily background budget.

Every model call is budgeted by the gate (:mod:`nexflow.llm.gate`) through
:meth:`Budgets.reserve` (before it sends: the call's worst case, checked against the limits
and reserved in one transaction) and :meth:`Budgets.settle` (after it: the reservation is
replaced by the real usage, the rows the statistics read, or dropped when the call failed).

The limits: a user's call is admitted while the user's daily and monthly tokens (used and
reserved by calls in flight) are under the limits, so a turn goes past a limit by at most
one call's reservation and a user at a limit gets no model call on any path. A background
call (a sync) must also fit entirely in the day's background budget, and it stops at the
user's hard stop too. :meth:`Budgets.check` answers ``/status`` and the reply warnings;
:meth:`Budgets.reserve_background` charges work that is not a model call (a fired reminder,
:meth:`Budgets.reminder_hook`) in one transaction, never past the limit.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Literal, Protocol

from nexflow import i18n
from nexflow.config.model import BudgetsConfig
from nexflow.llm.errors import BudgetExhausted
from nexflow.storage.base import AuditRecord
from nexflow.storage.repo_usage import Reserved, UsageLimit, UsageRow

Period = Literal["daily", "monthly"]
USER, BACKGROUND = "user", "background"
RESERVATION_TTL_S = 600.0  # a reservation never settled (a leak) stops counting after this


class UsageStore(Protocol):
    async def used_tokens(self, user_id: str, scope: str, day_prefix: str) -> int: ...

    async def reserve_tokens(
        self, user_id: str, day: str, scope: str, tokens: int, limit: int, label: str
    ) -> int | None: ...

    async def reserve_usage(
        self,
        user_id: str,
        scope: str,
        day: str,
        tokens: int,
        limits: Sequence[UsageLimit],
        *,
        now: float,
        ttl_s: float,
    ) -> Reserved: ...

    async def settle_usage(
        self, reservation: int | None, user_id: str, day: str, scope: str, row: UsageRow | None
    ) -> None: ...

    async def usage_by_model(self, day_prefix: str = "") -> list[UsageRow]: ...


@dataclass(frozen=True, slots=True)
class BudgetCheck:
    """The user's tightest budget period. ``limit`` None: unlimited."""

    period: Period
    used: int
    limit: int | None
    exhausted: bool = False
    warn: bool = False

    @property
    def percent(self) -> int:
        return min(100, round(100 * self.used / self.limit)) if self.limit else 0


@dataclass(frozen=True, slots=True)
class Reservation:
    """A call's hold on the budget until it is settled. ``id`` None: no limit applies, so
    nothing was reserved (the usage is still recorded at settle time)."""

    user_id: str
    scope: str
    tokens: int
    id: int | None = None


class Budgets:
    def __init__(
        self,
        config: BudgetsConfig,
        store: UsageStore,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self._config = config
        self._store = store
        self._clock = clock

    @property
    def default_reserve_tokens(self) -> int:
        """A call's completion share of its reservation when its profile has no max_tokens."""
        return self._config.default_reserve_tokens

    def limits(self) -> tuple[int | None, int | None]:
        """The per-user daily and monthly limits (None: unlimited)."""
        return self._config.per_user_daily_tokens, self._config.per_user_monthly_tokens

    def today(self) -> str:
        return self._clock().strftime("%Y-%m-%d")

    async def check(self, user_id: str) -> BudgetCheck:
        day = self.today()
        c = self._config
        periods: list[tuple[Period, int | None, str]] = [
            ("daily", c.per_user_daily_tokens, day),
            ("monthly", c.per_user_monthly_tokens, day[:7]),
        ]
        worst = BudgetCheck("daily", 0, None)
        worst_ratio = -1.0
        for period, limit, prefix in periods:
            if limit is None:
                continue
            used = await self._store.used_tokens(user_id, USER, prefix)
            ratio = used / limit if limit else float("inf")
            if ratio > worst_ratio:
                worst_ratio = ratio
                worst = BudgetCheck(
                    period,
                    used,
                    limit,
                    exhausted=used >= limit,
                    warn=ratio >= c.soft_warning_ratio,
                )
        return worst

    def _limits(self, scope: str, day: str) -> list[UsageLimit]:
        c = self._config
        limits = []
        if c.per_user_daily_tokens is not None:
            limits.append(UsageLimit("daily", USER, day, c.per_user_daily_tokens))
        if c.per_user_monthly_tokens is not None:
            limits.append(UsageLimit("monthly", USER, day[:7], c.per_user_monthly_tokens))
        if scope == BACKGROUND and c.background_daily_tokens is not None:
            limits.append(
                UsageLimit(BACKGROUND, BACKGROUND, day, c.background_daily_tokens, strict=True)
            )
        return limits

    async def reserve(self, user_id: str, scope: str, tokens: int) -> Reservation:
        """Reserve ``tokens`` (a call's worst case) for ``user_id`` in ``scope``
        (``"user"`` or ``"background"``), or raise :class:`BudgetExhausted`: nothing is
        reserved and the call must not be made. One database round trip; none at all
        when no limit applies."""
        if scope not in (USER, BACKGROUND):
            raise ValueError(f"unknown budget scope {scope!r}")
        now = self._clock()
        day = now.strftime("%Y-%m-%d")
        limits = self._limits(scope, day)
        if not limits:
            return Reservation(user_id, scope, tokens)
        reserved = await self._store.reserve_usage(
            user_id, scope, day, tokens, limits, now=now.timestamp(), ttl_s=RESERVATION_TTL_S
        )
        if reserved.refused is not None:
            raise _exhausted(reserved.refused, reserved.used, tokens, scope)
        return Reservation(user_id, scope, tokens, reserved.id)

    async def settle(self, reservation: Reservation, usage: UsageRow | None) -> None:
        """Replace the reservation with the call's ``usage`` (its model, tokens and cost:
        the ``llm_usage`` row the budgets and statistics read), or release it (None)."""
        await self._store.settle_usage(
            reservation.id, reservation.user_id, self.today(), reservation.scope, usage
        )

    async def record_turn(self, user_id: str, audit: Iterable[AuditRecord]) -> int:
        """A turn's tokens (its successful model calls). Records nothing: the budget gate
        recorded every call when it settled (kept for the gateway's warning check)."""
        return sum(
            int(r.data.get("tokens_in", 0)) + int(r.data.get("tokens_out", 0))
            for r in audit
            if r.kind == "llm_call" and r.outcome == "ok"
        )

    async def reserve_background(self, user_id: str, tokens: int, label: str) -> bool:
        """Charge ``tokens`` of background work for ``user_id`` today, or refuse (False)."""
        limit = self._config.background_daily_tokens
        if limit is None:
            limit = 2**62  # unlimited, but still recorded
        total = await self._store.reserve_tokens(
            user_id, self.today(), BACKGROUND, tokens, limit, label
        )
        return total is not None

    async def reminder_hook(self, user_id: str, action: str) -> str | None:
        """The reminder service's ``budget`` hook: every delivery costs
        ``background_fire_tokens``; adding one is free."""
        if action != "fire":
            return None
        if await self.reserve_background(
            user_id, self._config.background_fire_tokens, "charge:reminder"
        ):
            return None
        return (
            f"the background budget of {self._config.background_daily_tokens} tokens "
            "for today is used up"
        )

    async def user_tokens(self, user_id: str) -> tuple[int, int]:
        """The user's tokens today and this month."""
        day = self.today()
        return (
            await self._store.used_tokens(user_id, USER, day),
            await self._store.used_tokens(user_id, USER, day[:7]),
        )

    async def today_by_model(self) -> list[UsageRow]:
        return await self._store.usage_by_model(self.today())

    async def status_lines(self, lang: str, user_id: str) -> list[str]:
        """The ``/status`` lines: today's LLM use on this Nexflow and the user's budget."""
        rows = await self.today_by_model()
        today, month = await self.user_tokens(user_id)
        daily, monthly = self.limits()
        unlimited = i18n.t(lang, "status_unlimited")
        return [
            i18n.t(
                lang,
                "status_usage",
                calls=sum(r.calls for r in rows),
                tokens=sum(r.tokens for r in rows),
                cost=f"{sum(r.cost_usd for r in rows):.4f}",
            ),
            i18n.t(
                lang,
                "status_budget",
                today=today,
                daily=unlimited if daily is None else daily,
                month=month,
                monthly=unlimited if monthly is None else monthly,
            ),
        ]


def _exhausted(limit: UsageLimit, used: int, tokens: int, scope: str) -> BudgetExhausted:
    if limit.name == BACKGROUND:
        message = (
            f"the background token budget for today is used up ({used} of {limit.limit} "
            f"tokens; this call needs up to {tokens}); it resets at midnight UTC, the owner "
            "can raise budgets.background_daily_tokens"
        )
    else:
        message = i18n.t(None, f"budget_{limit.name}_exhausted", limit=limit.limit)
    return BudgetExhausted(message, period=limit.name, limit=limit.limit, used=used, scope=scope)
