"""Token budgets: per user per UTC day and month, and a separate daily background budget.

The gateway asks :meth:`Budgets.check` before a turn makes any model call (a user at a
hard limit is refused without one) and :meth:`Budgets.record_turn` after it; past
``soft_warning_ratio`` the reply carries a warning. Background work charges its own
budget through :meth:`Budgets.reserve_background`, which checks and charges in one
transaction, so it can never go past the limit (:meth:`Budgets.reminder_hook` is the
reminder service's ``budget`` hook).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Literal, Protocol

from nexflow import i18n
from nexflow.config.model import BudgetsConfig
from nexflow.storage.base import AuditRecord
from nexflow.storage.sqlite_usage import UsageRow

Period = Literal["daily", "monthly"]
USER, BACKGROUND = "user", "background"


class UsageStore(Protocol):
    async def record_usage(
        self, user_id: str, day: str, scope: str, rows: list[UsageRow]
    ) -> None: ...

    async def used_tokens(self, user_id: str, scope: str, day_prefix: str) -> int: ...

    async def reserve_tokens(
        self, user_id: str, day: str, scope: str, tokens: int, limit: int, label: str
    ) -> int | None: ...

    async def usage_by_model(self, day_prefix: str = "") -> list[UsageRow]: ...

    async def message_counts(self, since: float = 0.0) -> dict[str, int]: ...


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

    async def record_turn(self, user_id: str, audit: Iterable[AuditRecord]) -> int:
        """Add a turn's successful model calls to the user's usage; return its tokens."""
        by_model: dict[str, UsageRow] = {}
        for record in audit:
            if record.kind != "llm_call" or record.outcome != "ok":
                continue
            row = by_model.get(record.name, UsageRow(record.name))
            data = record.data
            by_model[record.name] = UsageRow(
                record.name,
                row.calls + 1,
                row.tokens_in + int(data.get("tokens_in", 0)),
                row.tokens_out + int(data.get("tokens_out", 0)),
                row.cost_usd + float(data.get("cost_usd", 0.0)),
            )
        if by_model:
            await self._store.record_usage(user_id, self.today(), USER, list(by_model.values()))
        return sum(r.tokens for r in by_model.values())

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

    async def overview(self) -> dict[str, Any]:
        """All-time and today's totals: messages, LLM calls, tokens, cost, per model."""
        now = self._clock()
        midnight = now.replace(hour=0, minute=0, second=0, microsecond=0).timestamp()
        result: dict[str, Any] = {"day": self.today()}
        for key, prefix, since in (("total", "", 0.0), ("today", self.today(), midnight)):
            rows = await self._store.usage_by_model(prefix)
            counts = await self._store.message_counts(since)
            result[key] = {
                "messages_in": counts.get("user", 0),
                "messages_out": counts.get("assistant", 0),
                **_totals(rows),
                "per_model": {r.model: _totals([r]) for r in rows},
            }
        return result

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


def _totals(rows: list[UsageRow]) -> dict[str, Any]:
    return {
        "llm_calls": sum(r.calls for r in rows),
        "tokens_in": sum(r.tokens_in for r in rows),
        "tokens_out": sum(r.tokens_out for r in rows),
        "cost_usd": round(sum(r.cost_usd for r in rows), 6),
    }
