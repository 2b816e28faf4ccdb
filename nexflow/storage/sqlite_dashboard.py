"""Dashboard queries (mixed into ``SQLiteStorage``): queue counts, model use per day and
model, users with identities and use. Records in :mod:`nexflow.storage.dashboard`."""

from __future__ import annotations

import sqlite3
from collections import defaultdict
from typing import Any

from nexflow.storage.dashboard import DayUsage, IdentityRow, QueueCounts, UserRow
from nexflow.storage.sqlite_conn import SQLiteConnection


def _scoped(user_id: str | None, table: str) -> tuple[str, tuple[Any, ...]]:
    """A WHERE clause keeping ``table``'s rows of ``user_id``'s sessions (None: all)."""
    if user_id is None:
        return "", ()
    return (
        f" WHERE {table}.session_id IN (SELECT id FROM sessions WHERE user_id = ?)",
        (user_id,),
    )


class SQLiteDashboard(SQLiteConnection):
    async def queue_counts(self, user_id: str | None) -> QueueCounts:
        """Inbox and outbox rows per status (a user's: their sessions' rows)."""
        inbox_where, inbox_args = _scoped(user_id, "inbox")
        outbox_where, outbox_args = _scoped(user_id, "outbox")

        def q(c: sqlite3.Connection) -> QueueCounts:
            inbox = c.execute(
                f"SELECT status, COUNT(*) FROM inbox{inbox_where} GROUP BY status", inbox_args
            ).fetchall()
            outbox = c.execute(
                f"SELECT status, COUNT(*) FROM outbox{outbox_where} GROUP BY status", outbox_args
            ).fetchall()
            return QueueCounts(
                {str(s): int(n) for s, n in inbox}, {str(s): int(n) for s, n in outbox}
            )

        return await self._run(q)

    async def usage_per_day(self, user_id: str | None, first_day: str) -> list[DayUsage]:
        """Calls, tokens and cost per UTC day and model from ``first_day`` on."""
        mine, args = (" AND user_id = ?", (user_id,)) if user_id is not None else ("", ())

        def q(c: sqlite3.Connection) -> list[DayUsage]:
            rows = c.execute(
                "SELECT day, model, SUM(calls), SUM(tokens_in), SUM(tokens_out), SUM(cost_usd) "
                f"FROM llm_usage WHERE day >= ? AND model NOT LIKE 'charge:%'{mine} "
                "GROUP BY day, model ORDER BY day, model",
                (first_day, *args),
            ).fetchall()
            return [
                DayUsage(str(d), str(m), int(n), int(i), int(o), round(float(cost), 6))
                for d, m, n, i, o, cost in rows
            ]

        return await self._run(q)

    async def users_overview(self, first_day: str) -> list[UserRow]:
        """Every user with identities, session count and model use from ``first_day``."""

        def q(c: sqlite3.Connection) -> list[UserRow]:
            ids: dict[str, list[IdentityRow]] = defaultdict(list)
            for channel, ext, uid, at in c.execute(
                "SELECT channel, external_id, user_id, created_at FROM identities "
                "ORDER BY created_at"
            ):
                ids[str(uid)].append(IdentityRow(str(channel), str(ext), float(at)))
            sessions = dict(
                c.execute("SELECT user_id, COUNT(*) FROM sessions GROUP BY user_id").fetchall()
            )
            usage = {
                str(r[0]): r[1:]
                for r in c.execute(
                    "SELECT user_id, SUM(calls), SUM(tokens_in), SUM(tokens_out), SUM(cost_usd) "
                    "FROM llm_usage WHERE day >= ? GROUP BY user_id",
                    (first_day,),
                )
            }
            out = []
            for uid, name, role, lang, created in c.execute(
                "SELECT id, name, role, lang, created_at FROM users ORDER BY created_at"
            ):
                calls, t_in, t_out, cost = usage.get(str(uid), (0, 0, 0, 0.0))
                out.append(
                    UserRow(
                        str(uid),
                        str(name),
                        str(role),
                        lang,
                        float(created),
                        tuple(ids.get(str(uid), ())),
                        int(sessions.get(uid, 0)),
                        int(calls or 0),
                        int(t_in or 0),
                        int(t_out or 0),
                        round(float(cost or 0), 6),
                    )
                )
            return out

        return await self._run(q)
