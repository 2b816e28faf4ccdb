"""LLM token usage per user, UTC day, scope and model (mixed into ``SQLiteStorage``).

``scope`` is ``"user"`` (a person's turns) or ``"background"`` (reminders, cron, syncs).
Months are day prefixes (``2026-11``), so one table answers both budget periods and the
statistics overview. Charges that are not model calls (a fired reminder) are stored under
a ``charge:<what>`` model name and left out of the per-model statistics.

In-flight model calls hold a *reservation* (:meth:`SQLiteUsage.reserve_usage`, the budget
gate's worst case for the call) until :meth:`SQLiteUsage.settle_usage` replaces it with
the call's usage or drops it. Reservations live in a ``TEMP`` table of the one connection:
they are this process's calls in flight, so a crash (or a restart) takes them with it and
nothing is left to block anyone; one that a living process leaks (a call cancelled while
settling) stops counting at its ``expires_at``.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence
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


_RESERVATIONS = (
    "CREATE TEMP TABLE IF NOT EXISTS llm_reservations (id INTEGER PRIMARY KEY, "
    "user_id TEXT NOT NULL, scope TEXT NOT NULL, day TEXT NOT NULL, "
    "tokens INTEGER NOT NULL, expires_at REAL NOT NULL)"
)
_USED = (
    "SELECT (SELECT COALESCE(SUM(tokens_in + tokens_out), 0) FROM llm_usage "
    "WHERE user_id=? AND scope=? AND day LIKE ? || '%') + "
    "(SELECT COALESCE(SUM(tokens), 0) FROM temp.llm_reservations "
    "WHERE user_id=? AND scope=? AND day LIKE ? || '%')"
)


@dataclass(frozen=True, slots=True)
class UsageLimit:
    """One limit a reservation must respect: ``scope``'s tokens on days starting with
    ``prefix`` (used and reserved) against ``limit``. ``strict``: the reservation itself
    must fit under the limit; otherwise there must only be room left (a call admitted
    with room may go past the limit by at most its own reservation)."""

    name: str  # what the caller calls it: "daily", "monthly", "background"
    scope: str
    prefix: str
    limit: int
    strict: bool = False


@dataclass(frozen=True, slots=True)
class Reserved:
    """The outcome of :meth:`SQLiteUsage.reserve_usage`: the reservation's id, or the
    first limit that refused it and the tokens it counted as used (settled + in flight)."""

    id: int | None
    refused: UsageLimit | None = None
    used: int = 0


class SQLiteUsage(SQLiteConnection):
    _reservations_on: sqlite3.Connection | None = None  # the connection with the TEMP table

    def _reservations(self, c: sqlite3.Connection) -> None:
        if self._reservations_on is not c:  # once per connection (runs on the DB thread)
            c.execute(_RESERVATIONS)
            self._reservations_on = c

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
    ) -> Reserved:
        """Reserve ``tokens`` for a call of ``user_id`` in ``scope`` on ``day`` if every
        limit allows it; one transaction (check + insert), so concurrent callers cannot
        pass a limit together. Expired reservations are dropped first."""

        def q(c: sqlite3.Connection) -> Reserved:
            self._reservations(c)
            with _tx(c):
                c.execute("DELETE FROM temp.llm_reservations WHERE expires_at <= ?", (now,))
                for lim in limits:
                    args = (user_id, lim.scope, lim.prefix)
                    used = int(c.execute(_USED, args + args).fetchone()[0])
                    if used + (tokens if lim.strict else 0) > lim.limit or used >= lim.limit:
                        return Reserved(None, lim, used)
                cur = c.execute(
                    "INSERT INTO temp.llm_reservations (user_id, scope, day, tokens, expires_at) "
                    "VALUES (?,?,?,?,?)",
                    (user_id, scope, day, tokens, now + ttl_s),
                )
                return Reserved(cur.lastrowid)

        return await self._run(q)

    async def settle_usage(
        self, reservation: int | None, user_id: str, day: str, scope: str, row: UsageRow | None
    ) -> None:
        """Replace a reservation with the call's usage (``row``), in one transaction;
        ``row`` None releases it (a failed call, a cache hit)."""
        if reservation is None and row is None:
            return

        def q(c: sqlite3.Connection) -> None:
            self._reservations(c)
            with _tx(c):
                if reservation is not None:
                    c.execute("DELETE FROM temp.llm_reservations WHERE id=?", (reservation,))
                if row is not None:
                    c.execute(
                        _UPSERT,
                        (
                            user_id,
                            day,
                            scope,
                            row.model,
                            row.calls,
                            row.tokens_in,
                            row.tokens_out,
                            row.cost_usd,
                        ),
                    )

        await self._run(q)

    async def reserved_tokens(self, user_id: str, scope: str) -> int:
        """Tokens ``user_id`` holds in reservations in ``scope`` (expired ones included)."""

        def q(c: sqlite3.Connection) -> int:
            self._reservations(c)
            row = c.execute(
                "SELECT COALESCE(SUM(tokens), 0) FROM temp.llm_reservations "
                "WHERE user_id=? AND scope=?",
                (user_id, scope),
            ).fetchone()
            return int(row[0])

        return await self._run(q)

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
