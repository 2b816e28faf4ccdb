"""Session leases: at most one replica runs a key's (a session's) turns at a time.

A :class:`Lease` is held by an ``owner`` (a replica id) until it expires ``ttl_s`` after it
was taken or last renewed; the holder renews it while it works and releases it when done.
A replica that dies simply stops renewing: once the lease has expired any replica may
take the key over, and :meth:`LeaseBoard.claim_expired` lets a sweeper find such keys.

Every lease carries a **fencing token**: a per-key number that grows each time the key
changes hands (a take-over after expiry, or after a release). A holder writes its token
next to whatever it changes, and storage refuses a write carrying an older token than the
last one seen, so a replica that paused past its lease (GC, a stalled VM) cannot clobber
the work of the one that took over. Re-acquiring a lease one still holds keeps the token.

Implementations:

- :class:`MemoryLeaseBoard`: one process (SQLite, one gateway); a dict and the monotonic
  clock, with the same semantics, so tasks in one process are kept apart the same way.
- :class:`PostgresLeaseBoard`: the table ``scale_leases`` on the storage engine, created on
  :meth:`~PostgresLeaseBoard.open`. Every time is the **database's** clock
  (``clock_timestamp()``), so replicas whose clocks disagree still agree on expiry. Each
  operation is one statement on the engine's worker thread (no pool of its own).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol, TypeVar

from nexflow.scale.errors import ScaleUnavailable
from nexflow.storage.base import StorageError
from nexflow.storage.engine import Conn, Engine

T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class Lease:
    """A lease on ``key`` held by ``owner``. ``expires_at`` is in seconds on the board's
    clock (the database's, on Postgres): compare it with nothing local; ``ttl_s`` is what
    :meth:`LeaseBoard.renew` extends it by."""

    key: str
    owner: str
    token: int
    ttl_s: float
    expires_at: float


class LeaseBoard(Protocol):
    """Where replicas take, renew and give back leases on keys.

    Every method may raise :class:`~nexflow.scale.errors.ScaleUnavailable` when the
    backend fails; a holder that cannot renew must assume its lease is gone by
    ``ttl_s`` after its last successful renewal."""

    async def acquire(self, key: str, owner: str, ttl_s: float) -> Lease | None:
        """Take ``key`` for ``owner`` for ``ttl_s`` seconds: a lease when the key was free,
        expired or already ``owner``'s (then extended, same token); None when another
        owner holds it."""
        ...

    async def renew(self, lease: Lease) -> bool:
        """Extend ``lease`` by its ``ttl_s``; False when it is no longer held (expired,
        released, taken over): stop working on the key."""
        ...

    async def release(self, lease: Lease) -> None:
        """Give ``lease`` back now (nothing happens if it was already taken over)."""
        ...

    async def holder(self, key: str) -> Lease | None:
        """The live lease on ``key``, if any."""
        ...

    async def claim_expired(self, owner: str, ttl_s: float, limit: int = 100) -> list[Lease]:
        """Take over up to ``limit`` keys whose holder let the lease expire without
        releasing it (it died): each becomes ``owner``'s with a new token. Concurrent
        sweepers on other replicas get disjoint keys."""
        ...


class MemoryLeaseBoard:
    """Leases in one process's memory (single gateway); same semantics as Postgres."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        # key -> (owner, expires_at, token); a released lease keeps its token, owner "".
        self._rows: dict[str, tuple[str, float, int]] = {}

    async def acquire(self, key: str, owner: str, ttl_s: float) -> Lease | None:
        _check(owner, ttl_s)
        now = self._clock()
        row = self._rows.get(key)
        if row is None:
            token = 1
        elif row[0] == owner and row[1] >= now:
            token = row[2]
        elif row[1] < now:
            token = row[2] + 1
        else:
            return None
        self._rows[key] = (owner, now + ttl_s, token)
        return Lease(key, owner, token, ttl_s, now + ttl_s)

    async def renew(self, lease: Lease) -> bool:
        now = self._clock()
        row = self._rows.get(lease.key)
        if row is None or row[0] != lease.owner or row[2] != lease.token or row[1] < now:
            return False
        self._rows[lease.key] = (lease.owner, now + lease.ttl_s, lease.token)
        return True

    async def release(self, lease: Lease) -> None:
        row = self._rows.get(lease.key)
        if row is not None and row[0] == lease.owner and row[2] == lease.token:
            self._rows[lease.key] = ("", float("-inf"), lease.token)

    async def holder(self, key: str) -> Lease | None:
        row = self._rows.get(key)
        if row is None or row[1] < self._clock():
            return None
        return Lease(key, row[0], row[2], 0.0, row[1])

    async def claim_expired(self, owner: str, ttl_s: float, limit: int = 100) -> list[Lease]:
        _check(owner, ttl_s)
        now = self._clock()
        expired = sorted(
            (row[1], key) for key, row in self._rows.items() if row[0] and row[1] < now
        )
        claimed = []
        for _, key in expired[: max(0, limit)]:
            token = self._rows[key][2] + 1
            self._rows[key] = (owner, now + ttl_s, token)
            claimed.append(Lease(key, owner, token, ttl_s, now + ttl_s))
        return claimed


_NOW = "extract(epoch FROM clock_timestamp())::double precision"

_CREATE = (
    "CREATE TABLE IF NOT EXISTS scale_leases ("
    " key TEXT PRIMARY KEY,"
    " owner TEXT NOT NULL,"
    " expires_at DOUBLE PRECISION NOT NULL,"
    " token BIGINT NOT NULL)"
)

# One statement: insert, or take over an expired / released row, or extend one's own.
# The clock is read once (the CTE) so the expiry test and the new expiry agree.
_ACQUIRE = f"""
WITH clock AS (SELECT {_NOW} AS now)
INSERT INTO scale_leases AS l (key, owner, expires_at, token)
SELECT ?, ?, clock.now + ?, 1 FROM clock
ON CONFLICT (key) DO UPDATE SET
    owner = excluded.owner,
    expires_at = excluded.expires_at,
    token = CASE WHEN l.owner = excluded.owner AND l.expires_at >= (SELECT now FROM clock)
                 THEN l.token ELSE l.token + 1 END
WHERE l.expires_at < (SELECT now FROM clock) OR l.owner = excluded.owner
RETURNING token, expires_at
"""

_RENEW = f"""
WITH clock AS (SELECT {_NOW} AS now)
UPDATE scale_leases SET expires_at = (SELECT now FROM clock) + ?
WHERE key = ? AND owner = ? AND token = ? AND expires_at >= (SELECT now FROM clock)
RETURNING expires_at
"""

# A released row keeps its token (the fencing order must survive it) with owner ''.
_RELEASE = (
    "UPDATE scale_leases SET owner = '', expires_at = '-infinity'::double precision"
    " WHERE key = ? AND owner = ? AND token = ?"
)

_HOLDER = (
    f"SELECT owner, token, expires_at FROM scale_leases WHERE key = ? AND expires_at >= {_NOW}"
)

_CLAIM = f"""
WITH clock AS (SELECT {_NOW} AS now),
dead AS (
    SELECT key FROM scale_leases
    WHERE owner <> '' AND expires_at < (SELECT now FROM clock)
    ORDER BY expires_at LIMIT ?
    FOR UPDATE SKIP LOCKED
)
UPDATE scale_leases AS l
SET owner = ?, expires_at = (SELECT now FROM clock) + ?, token = l.token + 1
FROM dead WHERE l.key = dead.key
RETURNING l.key, l.token, l.expires_at
"""


class PostgresLeaseBoard:
    """Leases in the ``scale_leases`` table of a Postgres storage engine (see the module
    docstring); call :meth:`open` once before use. The engine stays the caller's."""

    def __init__(self, engine: Engine) -> None:
        if engine.dialect != "postgresql":
            raise ValueError("PostgresLeaseBoard needs a Postgres engine")
        self._engine = engine

    async def open(self) -> None:
        """Create the table if it is missing (replicas starting together serialise on a
        transaction-scoped advisory lock: concurrent CREATE IF NOT EXISTS can collide)."""

        def create(conn: Conn) -> None:
            conn.execute("BEGIN")
            conn.execute("SELECT pg_advisory_xact_lock(hashtext('nexflow.scale.leases'))")
            conn.execute(_CREATE)
            conn.execute("COMMIT")

        await self._run(create)

    async def acquire(self, key: str, owner: str, ttl_s: float) -> Lease | None:
        _check(owner, ttl_s)
        row = await self._run(lambda c: c.execute(_ACQUIRE, (key, owner, ttl_s)).fetchone())
        if row is None:
            return None
        return Lease(key, owner, int(row["token"]), ttl_s, float(row["expires_at"]))

    async def renew(self, lease: Lease) -> bool:
        args = (lease.ttl_s, lease.key, lease.owner, lease.token)
        row = await self._run(lambda c: c.execute(_RENEW, args).fetchone())
        return row is not None

    async def release(self, lease: Lease) -> None:
        args = (lease.key, lease.owner, lease.token)
        await self._run(lambda c: c.execute(_RELEASE, args))

    async def holder(self, key: str) -> Lease | None:
        row = await self._run(lambda c: c.execute(_HOLDER, (key,)).fetchone())
        if row is None:
            return None
        return Lease(key, row["owner"], int(row["token"]), 0.0, float(row["expires_at"]))

    async def claim_expired(self, owner: str, ttl_s: float, limit: int = 100) -> list[Lease]:
        _check(owner, ttl_s)
        args = (max(0, limit), owner, ttl_s)
        rows = await self._run(lambda c: c.execute(_CLAIM, args).fetchall())
        return sorted(
            (Lease(r["key"], owner, int(r["token"]), ttl_s, float(r["expires_at"])) for r in rows),
            key=lambda lease: lease.expires_at,
        )

    async def _run(self, fn: Callable[[Conn], T]) -> T:
        try:
            return await self._engine.run(fn)
        except StorageError as exc:
            raise ScaleUnavailable(f"lease board: {exc}") from exc


def _check(owner: str, ttl_s: float) -> None:
    if not owner:
        raise ValueError("a lease owner must not be empty")
    if not ttl_s > 0:
        raise ValueError("a lease ttl_s must be positive")


async def lease_board_for(engine: Engine) -> LeaseBoard:
    """The board for a storage engine, open: Postgres shares leases between replicas;
    on SQLite (one gateway) they live in memory."""
    if engine.dialect != "postgresql":
        return MemoryLeaseBoard()
    board = PostgresLeaseBoard(engine)
    await board.open()
    return board
