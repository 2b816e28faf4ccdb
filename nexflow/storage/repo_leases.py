"""What session leases need of the storage (Postgres; docs/scale-out.md "Replicas").

The lease board (:mod:`nexflow.scale.leases`, table ``scale_leases``) is the one table of
another package the storage reads, here only:

* a turn's transitions carry the run's :class:`Fence` and :func:`check_fence` refuses the
  transaction (:class:`FenceLost`) once the session changed hands, with the lease row
  share-locked until COMMIT so no take-over slips in between;
* :meth:`LeaseRepo.release_session_if_idle` gives a lease back only when its session has
  no turn left to run, in one statement; :meth:`LeaseRepo.unleased_sessions` is what a
  replica's sweeper takes over.

On SQLite (one process) none of it runs: the leases are in memory and no fence is given.
"""

from __future__ import annotations

from dataclasses import dataclass

from nexflow.storage.base import StorageError
from nexflow.storage.connection import SQLConnection
from nexflow.storage.engine import Conn


@dataclass(frozen=True, slots=True)
class Fence:
    """The session lease a turn runs under (key, owner and fencing token of a
    :class:`~nexflow.scale.leases.Lease`): its commit is refused once the key changed
    hands. Only on Postgres; one process (SQLite) needs none."""

    key: str
    owner: str
    token: int


class FenceLost(StorageError):
    """A turn's commit carried a fence whose lease another replica has taken over: the
    transaction was rolled back, the new holder runs the turn."""


def check_fence(c: Conn, fence: Fence | None) -> None:
    """Inside a transaction: refuse it unless ``fence`` still holds its lease. The lease
    row stays share-locked until COMMIT, so no take-over slips in between."""
    if fence is None:
        return
    row = c.execute(
        "SELECT token FROM scale_leases WHERE key=? AND owner=? AND token=? FOR SHARE",
        (fence.key, fence.owner, fence.token),
    ).fetchone()
    if row is None:
        raise FenceLost(f"the lease {fence.key} (token {fence.token}) was taken over")


# Turns with work left: accepted, answered, or interrupted mid-run.
_RUNNABLE = "status IN ('pending','running')"
_LEASE_LIVE = (
    "SELECT 1 FROM scale_leases l WHERE l.key = 'session:' || i.session_id "
    "AND l.expires_at >= extract(epoch FROM clock_timestamp())::double precision"
)


class LeaseRepo(SQLConnection):
    """The inbox as the session leases read it (a base of the queue repository)."""

    async def runnable_turns(self, session_id: str) -> list[int]:
        """The session's turns with work left, oldest first."""

        def q(c: Conn) -> list[int]:
            rows = c.execute(
                f"SELECT id FROM inbox WHERE session_id=? AND {_RUNNABLE} ORDER BY id",
                (session_id,),
            ).fetchall()
            return [int(r["id"]) for r in rows]

        return await self._run(q)

    async def unleased_sessions(self, accepted_before: float, limit: int) -> list[str]:
        """Sessions with a turn left to run, accepted before ``accepted_before``, whose
        lease nobody holds (never taken, released, or its holder died)."""

        def q(c: Conn) -> list[str]:
            rows = c.execute(
                "SELECT i.session_id, MIN(i.id) AS first FROM inbox i "
                f"WHERE i.{_RUNNABLE} AND i.session_id IS NOT NULL AND i.created_at<? "
                f"AND NOT EXISTS ({_LEASE_LIVE}) GROUP BY i.session_id ORDER BY first LIMIT ?",
                (accepted_before, limit),
            ).fetchall()
            return [str(r["session_id"]) for r in rows]

        return await self._run(q)

    async def release_session_if_idle(self, fence: Fence, session_id: str) -> bool:
        """Give the session's lease back unless the session has a turn left to run, in one
        statement (a turn another replica commits while it runs may be missed: that one
        found the lease taken, and the sweeper takes it). False: it has one, or the lease
        was no longer held."""

        def q(c: Conn) -> bool:
            cur = c.execute(
                "UPDATE scale_leases SET owner='', expires_at='-infinity'::double precision "
                "WHERE key=? AND owner=? AND token=? AND NOT EXISTS "
                f"(SELECT 1 FROM inbox WHERE session_id=? AND {_RUNNABLE})",
                (fence.key, fence.owner, fence.token, session_id),
            )
            return cur.rowcount == 1

        return await self._run(q)
