"""Webhook deliveries already seen (mixed into ``SQLStorage``; nexflow.hooks.replay)."""

from __future__ import annotations

from nexflow.storage.connection import SQLConnection, _tx
from nexflow.storage.engine import Conn


class HookRepo(SQLConnection):
    async def remember_delivery(self, hook: str, delivery: str, now: float, keep_s: float) -> bool:
        """Record ``delivery`` of ``hook``; True if it is new. Deliveries of the hook older
        than ``keep_s`` are forgotten first (one transaction)."""

        def q(c: Conn) -> bool:
            with _tx(c):
                c.execute(
                    "DELETE FROM webhook_deliveries WHERE hook=? AND received_at < ?",
                    (hook, now - keep_s),
                )
                cur = c.execute(
                    "INSERT INTO webhook_deliveries (hook, delivery, received_at) "
                    "VALUES (?,?,?) ON CONFLICT(hook, delivery) DO NOTHING",
                    (hook, delivery, now),
                )
                return cur.rowcount == 1

        return await self._run(q)
