"""LLM token usage per user, UTC day, scope and model (mixed into ``SQLiteStorage``).

``scope`` is ``"user"`` (a person's turns) or ``"background"`` (reminders, cron, syncs).
Months are day prefixes (``2026-11``), so one table answers both budget periods and the
statistics overview. Charges that are not model calls (a fired reminder) are stored under
a ``charge:<what>`` model name and left out of the per-model statistics.
"""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass

from nexflow.storage.sqlite_conn import SQLiteConnection, _tx

_UPSERT = (
    "INSERT INTO llm_usage (user_id, day, scope, model, calls, tokens_in, tokens_out, cost_usd) "
    "VALUES (?,?,?,?,?,?,?,?) ON CONFLICT (user_id, day, scope, model) DO UPDATE SET "
    "calls = calls + excluded.calls, tokens_in = tokens_in + excluded.tokens_in, "
    "tokens_out = tokens_out + excluded.tokens_out, cost_usd = cost_usd + excluded.cost_usd"
)


@dataclass(frozen=True, slots=True)
class UsageRow:
    """One model's (or a total's) calls, tokens and cost."""

    model: str
    calls: int = 0
    tokens_in: int = 0
    tokens_out: int = 0
    cost_usd: float = 0.0

    @property
    def tokens(self) -> int:
        return self.tokens_in + self.tokens_out


class SQLiteUsage(SQLiteConnection):
    async def record_usage(self, user_id: str, day: str, scope: str, rows: list[UsageRow]) -> None:
        def q(c: sqlite3.Connection) -> None:
            with _tx(c):
                c.executemany(
                    _UPSERT,
                    [
                        (
                            user_id,
                            day,
                            scope,
                            r.model,
                            r.calls,
                            r.tokens_in,
                            r.tokens_out,
                            r.cost_usd,
                        )
                        for r in rows
                    ],
                )

        await self._run(q)

    async def used_tokens(self, user_id: str, scope: str, day_prefix: str) -> int:
        """Tokens used by ``user_id`` in ``scope`` on days starting with ``day_prefix``."""

        def q(c: sqlite3.Connection) -> int:
            row = c.execute(
                "SELECT COALESCE(SUM(tokens_in + tokens_out), 0) FROM llm_usage "
                "WHERE user_id=? AND scope=? AND day LIKE ? || '%'",
                (user_id, scope, day_prefix),
            ).fetchone()
            return int(row[0])

        return await self._run(q)

    async def reserve_tokens(
        self, user_id: str, day: str, scope: str, tokens: int, limit: int, label: str
    ) -> int | None:
        """Charge ``tokens`` under ``label`` if the day's total stays within ``limit``;
        return the new total, or None (nothing charged). Check and charge are one
        transaction, so concurrent callers cannot overshoot together."""

        def q(c: sqlite3.Connection) -> int | None:
            with _tx(c):
                row = c.execute(
                    "SELECT COALESCE(SUM(tokens_in + tokens_out), 0) FROM llm_usage "
                    "WHERE user_id=? AND scope=? AND day=?",
                    (user_id, scope, day),
                ).fetchone()
                used = int(row[0])
                if used + tokens > limit:
                    return None
                c.execute(_UPSERT, (user_id, day, scope, label, 1, tokens, 0, 0.0))
                return used + tokens

        return await self._run(q)

    async def usage_by_model(self, day_prefix: str = "") -> list[UsageRow]:
        """Totals per model over days starting with ``day_prefix`` ("" = all time)."""

        def q(c: sqlite3.Connection) -> list[UsageRow]:
            rows = c.execute(
                "SELECT model, SUM(calls), SUM(tokens_in), SUM(tokens_out), SUM(cost_usd) "
                "FROM llm_usage WHERE day LIKE ? || '%' AND model NOT LIKE 'charge:%' "
                "GROUP BY model ORDER BY model",
                (day_prefix,),
            ).fetchall()
            return [UsageRow(str(r[0]), int(r[1]), int(r[2]), int(r[3]), float(r[4])) for r in rows]

        return await self._run(q)

    async def message_counts(self, since: float = 0.0) -> dict[str, int]:
        """Stored messages by role since the epoch time ``since``."""

        def q(c: sqlite3.Connection) -> dict[str, int]:
            rows = c.execute(
                "SELECT role, COUNT(*) FROM messages WHERE created_at >= ? GROUP BY role",
                (since,),
            ).fetchall()
            return {str(r[0]): int(r[1]) for r in rows}

        return await self._run(q)
