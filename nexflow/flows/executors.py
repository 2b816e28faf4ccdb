"""Which flow executors are alive, and the sweeper for those that died for good (Postgres).

DBOS 3.4 resumes a killed executor's ``PENDING`` workflows only when an executor with the
**same id** launches again (its start-up recovery). A worker whose id never comes back
(scaled down, a new host name) would leave its runs ``PENDING`` forever, and DBOS keeps no
heartbeat of its own to tell a dead executor from a busy one. So:

- **Presence.** Every engine on Postgres holds a session advisory lock named after its
  executor id (``nexflow-executor:<id>``, ``hashtextextended``) on a connection of its
  own for as long as it runs (:class:`ExecutorPresence`). Postgres frees the lock the
  moment that session ends: the process was SIGKILLed, its backend terminated, or TCP
  keepalives found the peer gone (~11 s). No heartbeat table, no clocks.
- **Sweep.** :func:`dead_executors` lists the executors that own ``PENDING`` workflows in
  DBOS's ``dbos`` schema and tries each one's lock: a lock it can take belongs to no live
  process. The caller (a worker, every ``flows.sweep_s``) then hands their workflows back
  through DBOS's own recovery (:meth:`FlowEngine.recover`), which re-enqueues them (a run
  on its queue, a node workflow on DBOS's internal queue) under a predicate on the dead
  executor id: two sweepers, or a sweeper and the dead executor coming back, never both
  re-enqueue a workflow another executor has taken meanwhile.

Not a fence: an executor cut off from Postgres for longer than the keepalives but still
running would be swept while it works; its steps then run twice, which the idempotency
keys (``docs/flows.md``, "At least once") make harmless for hosts that honour them.
"""

from __future__ import annotations

import asyncio
from typing import Any

import structlog

from nexflow.flows.errors import EngineUnavailable
from nexflow.storage.engine import redact

log = structlog.get_logger("nexflow.flows.executors")

LOCK_PREFIX = "nexflow-executor:"
_CONNECT: dict[str, Any] = {
    "autocommit": True,
    "connect_timeout": 10,
    "keepalives": 1,
    "keepalives_idle": 5,
    "keepalives_interval": 2,
    "keepalives_count": 3,
}
_TRY = "SELECT pg_try_advisory_lock(hashtextextended(%s, 0))"
_UNLOCK = "SELECT pg_advisory_unlock(hashtextextended(%s, 0))"


def is_postgres(url: str) -> bool:
    return url.startswith(("postgresql://", "postgres://"))


class ExecutorPresence:
    """Holds ``nexflow-executor:<id>`` while the engine runs (see the module docstring)."""

    def __init__(self, url: str, executor_id: str) -> None:
        self._url = url
        self._executor_id = executor_id
        self._conn: Any = None

    async def hold(self, wait_s: float = 10.0) -> bool:
        """Take the lock; wait up to ``wait_s`` while another session holds it (the same
        id restarted before Postgres noticed the old process die). False when it stays
        taken: another live process uses this executor id (logged; it keeps running)."""
        import psycopg

        name = LOCK_PREFIX + self._executor_id
        try:
            conn = await psycopg.AsyncConnection.connect(
                self._url, application_name=f"nexflow executor {self._executor_id}"[:63], **_CONNECT
            )
        except psycopg.Error as exc:
            raise EngineUnavailable("the flow engine cannot reach its database") from exc
        loop = asyncio.get_running_loop()
        deadline = loop.time() + wait_s
        try:
            while True:
                row = await (await conn.execute(_TRY, (name,))).fetchone()
                if row is not None and row[0]:
                    self._conn = conn
                    return True
                if loop.time() >= deadline:
                    break
                await asyncio.sleep(0.25)
        except psycopg.Error as exc:
            await conn.close()
            raise EngineUnavailable("the flow engine cannot reach its database") from exc
        await conn.close()
        log.warning(
            "flows_executor_id_in_use",
            executor=self._executor_id,
            hint="another live process has this flows.executor_id: give each its own",
        )
        return False

    async def release(self) -> None:
        conn, self._conn = self._conn, None
        if conn is not None:
            try:
                await conn.close()  # ending the session frees the lock
            except Exception:
                log.warning("flows_presence_close_failed", exc_info=True)


async def dead_executors(url: str, own: str) -> list[str]:
    """Executors (other than ``own``) that own ``PENDING`` workflows and hold no
    presence lock: their processes are gone."""
    import psycopg

    try:
        conn = await psycopg.AsyncConnection.connect(url, **_CONNECT)
    except psycopg.Error:
        log.warning("flows_sweep_unreachable", database=redact(url), exc_info=True)
        return []
    dead: list[str] = []
    try:
        try:
            rows = await (
                await conn.execute(
                    "SELECT DISTINCT executor_id FROM dbos.workflow_status "
                    "WHERE status = 'PENDING' AND executor_id IS NOT NULL AND executor_id <> %s",
                    (own,),
                )
            ).fetchall()
        except psycopg.errors.UndefinedTable:
            return []  # DBOS never ran on this database
        for (executor,) in rows:
            name = LOCK_PREFIX + str(executor)
            got = await (await conn.execute(_TRY, (name,))).fetchone()
            if got is not None and got[0]:
                await conn.execute(_UNLOCK, (name,))
                dead.append(str(executor))
    except psycopg.Error:
        log.warning("flows_sweep_failed", database=redact(url), exc_info=True)
    finally:
        await conn.close()
    return dead


__all__ = ["ExecutorPresence", "dead_executors", "is_postgres"]
