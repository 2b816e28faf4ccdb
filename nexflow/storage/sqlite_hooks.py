"""Webhook deliveries already seen (mixed into ``SQLiteStorage``; nexflow.hooks.replay)."""

from __future__ import annotations

import sqlite3

from nexflow.storage.sqlite_conn import SQLiteConnection, _tx


class SQLiteHooks(SQLiteConnection):
    async def remember_delivery(self, hook: str, delivery: str, now: float, keep_s: float) -> bool:
        """Record ``delivery`` of ``hook``; True if it is new. Deliveries of the hook older
        than ``keep_s`` are forgotten first (one transaction)."""

        def q(c: sqlite3.Connection) -> bool:
            with _tx(c):
                c.execute(
                    "DELETE FROM webhook_deliveries WHERE hook=? AND received_at < ?",
                    (hook, now - keep_s),
                )
                cur = c.execute(
                    "INSERT OR IGNORE INTO webhook_deliveries (hook, delivery, received_at) "
                    "VALUES (?,?,?)",
                    (hook, delivery, now),
                )
                return cur.rowcount == 1

        return await self._run(q)
