"""Dashboard queries (mixed into ``SQLStorage``): queue counts, model use per day and
model, users with identities and use. Records in :mod:`nexflow.storage.dashboard`."""

from __future__ import annotations

from collections import defaultdict
from typing import Any

from nexflow.storage.connection import SQLConnection
from nexflow.storage.dashboard import DayUsage, IdentityRow, QueueCounts, UserRow
from nexflow.storage.engine import Conn
from nexflow.storage.repo_usage import USAGE_SUMS, UsageRow, usage_row

_NO_USAGE = UsageRow("")


def _scoped(user_id: str | None, table: str) -> tuple[str, tuple[Any, ...]]:
    """A WHERE clause keeping ``table``'s rows of ``user_id``'s sessions (None: all)."""
    if user_id is None:
        return "", ()
    return (
        f" WHERE {table}.session_id IN (SELECT id FROM sessions WHERE user_id = ?)",
        (user_id,),
    )


class DashboardRepo(SQLConnection):
    async def queue_counts(self, user_id: str | None) -> QueueCounts:
        """Inbox and outbox rows per status (a user's: their sessions' rows)."""
        inbox_where, inbox_args = _scoped(user_id, "inbox")
        outbox_where, outbox_args = _scoped(user_id, "outbox")

        def q(c: Conn) -> QueueCounts:
            inbox = c.execute(
                f"SELECT status, COUNT(*) AS n FROM inbox{inbox_where} GROUP BY status", inbox_args
            ).fetchall()
            outbox = c.execute(
                f"SELECT status, COUNT(*) AS n FROM outbox{outbox_where} GROUP BY status",
                outbox_args,
            ).fetchall()
            return QueueCounts(
                {str(r["status"]): int(r["n"]) for r in inbox},
                {str(r["status"]): int(r["n"]) for r in outbox},
            )

        return await self._run(q)

    async def usage_per_day(self, user_id: str | None, first_day: str) -> list[DayUsage]:
        """Calls, tokens and cost per UTC day and model from ``first_day`` on."""
        mine, args = (" AND user_id = ?", (user_id,)) if user_id is not None else ("", ())

        def q(c: Conn) -> list[DayUsage]:
            rows = c.execute(
                f"SELECT day, model, {USAGE_SUMS} "
                f"FROM llm_usage WHERE day >= ? AND model NOT LIKE 'charge:%'{mine} "
                "GROUP BY day, model ORDER BY day, model",
                (first_day, *args),
            ).fetchall()
            out = []
            for r in rows:
                u = usage_row(str(r["model"]), r)
                out.append(
                    DayUsage(
                        str(r["day"]),
                        u.model,
                        u.calls,
                        u.tokens_in,
                        u.tokens_out,
                        round(u.cost_usd, 6),
                    )
                )
            return out

        return await self._run(q)

    async def users_overview(self, first_day: str) -> list[UserRow]:
        """Every user with identities, session count and model use from ``first_day``."""

        def q(c: Conn) -> list[UserRow]:
            ids: dict[str, list[IdentityRow]] = defaultdict(list)
            for r in c.execute(
                "SELECT channel, external_id, user_id, created_at FROM identities "
                "ORDER BY created_at"
            ).fetchall():
                ids[str(r["user_id"])].append(
                    IdentityRow(str(r["channel"]), str(r["external_id"]), float(r["created_at"]))
                )
            sessions = {
                str(r["user_id"]): int(r["n"])
                for r in c.execute(
                    "SELECT user_id, COUNT(*) AS n FROM sessions GROUP BY user_id"
                ).fetchall()
            }
            usage = {
                str(r["user_id"]): usage_row("", r)
                for r in c.execute(
                    f"SELECT user_id, {USAGE_SUMS} FROM llm_usage WHERE day >= ? GROUP BY user_id",
                    (first_day,),
                ).fetchall()
            }
            out = []
            for r in c.execute(
                "SELECT id, name, role, lang, created_at FROM users ORDER BY created_at"
            ).fetchall():
                uid = str(r["id"])
                u = usage.get(uid, _NO_USAGE)
                out.append(
                    UserRow(
                        uid,
                        str(r["name"]),
                        str(r["role"]),
                        r["lang"],
                        float(r["created_at"]),
                        tuple(ids.get(uid, ())),
                        sessions.get(uid, 0),
                        u.calls,
                        u.tokens_in,
                        u.tokens_out,
                        round(u.cost_usd, 6),
                    )
                )
            return out

        return await self._run(q)
