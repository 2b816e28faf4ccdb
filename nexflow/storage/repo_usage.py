"""LLM token usage per user, UTC day, scope and model (mixed into ``SQLStorage``).

``scope`` is ``"user"`` (a person's turns) or ``"background"`` (reminders, cron, syncs).
Months are day prefixes (``2026-11``), so one table answers both budget periods and the
statistics overview. Charges that are not model calls (a fired reminder) are stored under
a ``charge:<what>`` model name and left out of the per-model statistics.

In-flight model calls hold a *reservation* (:meth:`UsageRepo.reserve_usage`, the budget
gate's worst case for the call) until :meth:`UsageRepo.settle_usage` replaces it with
the call's usage or drops it. One that a living process leaks (a call cancelled while
settling) stops counting at its ``expires_at``.

- **SQLite**: reservations live in a ``TEMP`` table of the one connection: they are this
  process's calls in flight, so a crash (or a restart) takes them with it and nothing is
  left to block anyone. SQLite's single writer (``BEGIN IMMEDIATE``) makes check + insert
  atomic.
- **Postgres**: every replica's calls count against the same budget, so reservations live
  in the shared ``llm_reservations`` table (migration 14; on SQLite the TEMP table of the
  same name shadows it). A dead replica's reservations count until their ``expires_at``
  (the gate's TTL). Check + insert run under a transaction-scoped advisory lock on the
  user, so concurrent reservers of one user, in any process, take turns; other users do
  not wait.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from nexflow.storage.connection import SQLConnection, _tx
from nexflow.storage.dialect import key_lock
from nexflow.storage.engine import Conn, Dialect, Row

_UPSERT = (
    "INSERT INTO llm_usage (user_id, day, scope, model, calls, tokens_in, tokens_out, cost_usd) "
    "VALUES (?,?,?,?,?,?,?,?) ON CONFLICT (user_id, day, scope, model) DO UPDATE SET "
    "calls = llm_usage.calls + excluded.calls, "
    "tokens_in = llm_usage.tokens_in + excluded.tokens_in, "
    "tokens_out = llm_usage.tokens_out + excluded.tokens_out, "
    "cost_usd = llm_usage.cost_usd + excluded.cost_usd"
)


USAGE_SUMS = (
    "SUM(calls) AS calls, SUM(tokens_in) AS tokens_in, SUM(tokens_out) AS tokens_out, "
    "SUM(cost_usd) AS cost_usd"
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
# The reservations table: this connection's TEMP table on SQLite, the shared one on Postgres.
_TABLE: dict[Dialect, str] = {"sqlite": "temp.llm_reservations", "postgresql": "llm_reservations"}
# Postgres: reservers of one user (any process) take turns on this advisory lock.
_USER_LOCK = {d: key_lock(d, 7_331_002) for d in _TABLE}


def _sql(template: str) -> dict[Dialect, str]:
    return {d: template.format(table=t) for d, t in _TABLE.items()}


_USED = _sql(
    "SELECT (SELECT COALESCE(SUM(tokens_in + tokens_out), 0) FROM llm_usage "
    "WHERE user_id=? AND scope=? AND day LIKE ? || '%') + "
    "(SELECT COALESCE(SUM(tokens), 0) FROM {table} "
    "WHERE user_id=? AND scope=? AND day LIKE ? || '%') AS used"
)
_EXPIRE = {
    "sqlite": "DELETE FROM temp.llm_reservations WHERE expires_at <= ?",
    # Only this user's (the lock covers them); another user's are dropped on their turn.
    "postgresql": "DELETE FROM llm_reservations WHERE user_id = ? AND expires_at <= ?",
}
_RESERVE = _sql(
    "INSERT INTO {table} (user_id, scope, day, tokens, expires_at) VALUES (?,?,?,?,?) RETURNING id"
)
_RELEASE = _sql("DELETE FROM {table} WHERE id=?")
_RESERVED = _sql(
    "SELECT COALESCE(SUM(tokens), 0) AS tokens FROM {table} WHERE user_id=? AND scope=?"
)


def _lock_user(c: Conn, user_id: str) -> None:
    """Postgres: serialise this transaction with the user's other reservers (any process).
    SQLite's ``BEGIN IMMEDIATE`` already did."""
    lock = _USER_LOCK[c.dialect]
    if lock is not None:
        c.execute(lock, (user_id,))


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
    """The outcome of :meth:`UsageRepo.reserve_usage`: the reservation's id, or the
    first limit that refused it and the tokens it counted as used (settled + in flight)."""

    id: int | None
    refused: UsageLimit | None = None
    used: int = 0


class UsageRepo(SQLConnection):
    _reservations_on: Conn | None = None  # the SQLite connection with the TEMP table

    def _reservations(self, c: Conn) -> None:
        # Once per SQLite connection (runs on the DB thread); Postgres has migration 14's.
        if self._reservations_on is not c and c.dialect == "sqlite":
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

        def q(c: Conn) -> Reserved:
            self._reservations(c)
            d = c.dialect
            with _tx(c):
                _lock_user(c, user_id)
                c.execute(_EXPIRE[d], (now,) if d == "sqlite" else (user_id, now))
                for lim in limits:
                    args = (user_id, lim.scope, lim.prefix)
                    used = int(c.execute(_USED[d], args + args).fetchone()["used"])
                    if used + (tokens if lim.strict else 0) > lim.limit or used >= lim.limit:
                        return Reserved(None, lim, used)
                row = c.execute(
                    _RESERVE[d], (user_id, scope, day, int(tokens), now + ttl_s)
                ).fetchone()
                return Reserved(int(row["id"]))

        return await self._run(q)

    async def settle_usage(
        self, reservation: int | None, user_id: str, day: str, scope: str, row: UsageRow | None
    ) -> None:
        """Replace a reservation with the call's usage (``row``), in one transaction;
        ``row`` None releases it (a failed call, a cache hit)."""
        if reservation is None and row is None:
            return

        def q(c: Conn) -> None:
            self._reservations(c)
            with _tx(c):
                if reservation is not None:
                    c.execute(_RELEASE[c.dialect], (reservation,))
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

        def q(c: Conn) -> int:
            self._reservations(c)
            row = c.execute(_RESERVED[c.dialect], (user_id, scope)).fetchone()
            return int(row["tokens"])

        return await self._run(q)

    async def record_usage(self, user_id: str, day: str, scope: str, rows: list[UsageRow]) -> None:
        def q(c: Conn) -> None:
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

        def q(c: Conn) -> int:
            row = c.execute(
                "SELECT COALESCE(SUM(tokens_in + tokens_out), 0) AS used FROM llm_usage "
                "WHERE user_id=? AND scope=? AND day LIKE ? || '%'",
                (user_id, scope, day_prefix),
            ).fetchone()
            return int(row["used"])

        return await self._run(q)

    async def reserve_tokens(
        self, user_id: str, day: str, scope: str, tokens: int, limit: int, label: str
    ) -> int | None:
        """Charge ``tokens`` under ``label`` if the day's total stays within ``limit``;
        return the new total, or None (nothing charged). Check and charge are one
        transaction, so concurrent callers cannot overshoot together."""

        def q(c: Conn) -> int | None:
            with _tx(c):
                _lock_user(c, user_id)
                row = c.execute(
                    "SELECT COALESCE(SUM(tokens_in + tokens_out), 0) AS used FROM llm_usage "
                    "WHERE user_id=? AND scope=? AND day=?",
                    (user_id, scope, day),
                ).fetchone()
                used = int(row["used"])
                if used + tokens > limit:
                    return None
                c.execute(_UPSERT, (user_id, day, scope, label, 1, tokens, 0, 0.0))
                return used + tokens

        return await self._run(q)

    async def usage_by_model(self, day_prefix: str = "") -> list[UsageRow]:
        """Totals per model over days starting with ``day_prefix`` ("" = all time)."""

        def q(c: Conn) -> list[UsageRow]:
            rows = c.execute(
                f"SELECT model, {USAGE_SUMS} FROM llm_usage "
                "WHERE day LIKE ? || '%' AND model NOT LIKE 'charge:%' "
                "GROUP BY model ORDER BY model",
                (day_prefix,),
            ).fetchall()
            return [usage_row(str(r["model"]), r) for r in rows]

        return await self._run(q)


def usage_row(model: str, r: Row) -> UsageRow:
    """A row of :data:`USAGE_SUMS` (Postgres sums integers as numeric: read as float)."""
    return UsageRow(
        model,
        int(r["calls"] or 0),
        int(r["tokens_in"] or 0),
        int(r["tokens_out"] or 0),
        float(r["cost_usd"] or 0),
    )
