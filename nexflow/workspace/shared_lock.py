"""The cross-process half of the workspace lock, for replicas on one shared volume.

Every gateway replica and every ``nexflow worker`` of a deployment opens the same git
repositories on the shared ``workspaces.root``. :meth:`Repos.locked
<nexflow.workspace.repos.Repos.locked>` takes this process's :class:`asyncio.Lock` for
the workspace first (so one process waits in memory and uses one connection per
workspace at a time), then :meth:`WorkspaceLocks.hold` here:

- :class:`LocalLocks` (SQLite storage, one process): nothing to take, no cost.
- :class:`PostgresLocks` (Postgres storage): a session advisory lock
  ``pg_advisory_lock(<key id>)`` held on a connection of its own for as long as the
  block runs. ``<key id>`` is the first 8 bytes of BLAKE2b over
  ``nexflow:workspace:<user>/<name>`` as a signed 64-bit integer: stable across
  processes and versions, namespaced away from the leader elections' ``hashtextextended``
  ids (a collision between two 64-bit ids would only make two workspaces wait on each
  other). Waiting is a blocking ``pg_advisory_lock`` on the server, not a poll. When a
  holder dies (SIGKILL, a lost network, a terminated backend) Postgres ends its session
  and frees the lock, and the next waiter gets it at once.

Connections are reused: released ones wait in a small idle list (``max_idle``), so an
operation costs two round trips (lock, unlock), not a connect. At most ``max_held``
workspaces are locked at once by one process (a bounded number of connections per
replica); more wait for a slot. Nothing in the workspace layer holds two workspace locks
at once, which is what keeps the slots (and the advisory locks) deadlock-free.

Failures (docs/scale-out.md, "Workspaces on a shared volume"): the database cannot be
reached, or another process held the workspace longer than ``wait_timeout_s`` (a
``lock_timeout`` on the wait): :class:`~nexflow.workspace.api.Unavailable` (503), and
nothing was changed. A holder whose connection broke while it worked is not stopped (the
lock is not a fence); its ``update-ref`` compare-and-swap still refuses to move ``main``
from a commit it no longer is at, and ``workspace_lock_lost`` is logged at the release.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
from collections.abc import AsyncIterator
from contextlib import AbstractAsyncContextManager
from typing import Any, Protocol

import structlog

from nexflow.storage.engine import redact, session_args
from nexflow.workspace.api import Unavailable

log = structlog.get_logger("nexflow.workspace")

NAMESPACE = b"nexflow:workspace:"


def lock_id(key: str) -> int:
    """The advisory lock id of workspace ``key`` (``<user>/<name>``): a signed int64."""
    digest = hashlib.blake2b(NAMESPACE + key.encode("utf-8"), digest_size=8).digest()
    return int.from_bytes(digest, "big", signed=True)


class WorkspaceLocks(Protocol):
    """Excludes other processes from one workspace while a block runs."""

    @property
    def shared(self) -> bool:
        """True when other processes may open the same repositories (the caller then
        checks for their commits after taking the lock)."""
        ...

    def hold(self, key: str) -> AbstractAsyncContextManager[None]:
        """Wait until no other process holds ``key``; hold it until the block ends.
        :class:`~nexflow.workspace.api.Unavailable` when that cannot be decided."""
        ...

    async def close(self) -> None:
        """Drop idle connections; locks still held are released at their block's end."""
        ...


class LocalLocks:
    """One process (SQLite storage): the in-process lock is the whole lock."""

    shared = False

    @contextlib.asynccontextmanager
    async def hold(self, key: str) -> AsyncIterator[None]:
        yield

    async def close(self) -> None:
        return None


class PostgresLocks:
    """Session advisory locks on the deployment's Postgres (see the module docstring).

    Connections (``nexflow workspace lock`` in ``pg_stat_activity``) are opened on first
    use and made on the running loop; build and use it on one loop."""

    shared = True

    def __init__(
        self,
        url: str,
        *,
        wait_timeout_s: float = 300.0,
        max_held: int = 16,
        max_idle: int = 4,
        connect_timeout_s: float = 10.0,
    ) -> None:
        self._url = url
        self._wait_timeout_ms = max(1, int(wait_timeout_s * 1000))
        self._max_idle = max_idle
        self._slots = asyncio.Semaphore(max_held)
        self._idle: list[Any] = []  # psycopg.AsyncConnection, lock-free, ready to reuse
        self._closed = False
        self._connect_args = session_args(
            "nexflow workspace lock", connect_timeout_s=connect_timeout_s
        )

    @contextlib.asynccontextmanager
    async def hold(self, key: str) -> AsyncIterator[None]:
        if self._closed:
            raise Unavailable("the workspaces are stopping")
        ident = lock_id(key)
        async with self._slots:
            conn = await self._acquire(key, ident)
            try:
                yield
            finally:
                await self._release(conn, key, ident)

    async def _acquire(self, key: str, ident: int) -> Any:
        import psycopg

        while True:
            reused = bool(self._idle)
            conn = self._idle.pop() if reused else await self._connect(key)
            try:
                await conn.execute("SELECT pg_advisory_lock(%s)", (ident,))
                return conn
            except psycopg.errors.LockNotAvailable as exc:
                await conn.close()
                raise Unavailable(
                    f"workspace {key} was held by another gateway or worker for more than "
                    f"{self._wait_timeout_ms / 1000:g} s; nothing was changed",
                    "try again",
                ) from exc
            except psycopg.Error as exc:
                await conn.close()
                if reused:  # the server dropped an idle connection (a restart?): all of them
                    await self._drop_idle()
                    continue  # once more, on a new connection
                log.error("workspace_lock_failed", workspace=key, exc_info=True)
                raise Unavailable(
                    f"workspace {key} could not be locked: the database did not answer",
                    "try again",
                ) from exc
            except BaseException:  # cancelled while waiting: psycopg cancelled the query
                await conn.close()  # and a lock granted meanwhile goes with the session
                raise

    async def _connect(self, key: str) -> Any:
        import psycopg

        conn = None
        try:
            conn = await psycopg.AsyncConnection.connect(self._url, **self._connect_args)
            # A server-wide statement timeout must not end a wait; lock_timeout bounds it.
            await conn.execute("SET statement_timeout = 0")
            await conn.execute(f"SET lock_timeout = {self._wait_timeout_ms}")
        except BaseException as exc:
            if conn is not None:
                await conn.close()
            if not isinstance(exc, psycopg.Error):
                raise
            log.error("workspace_lock_failed", workspace=key, url=redact(self._url), exc_info=True)
            raise Unavailable(
                f"workspace {key} could not be locked: cannot connect to the database",
                "try again",
            ) from exc
        return conn

    async def _release(self, conn: Any, key: str, ident: int) -> None:
        import psycopg

        try:
            cur = await conn.execute("SELECT pg_advisory_unlock(%s)", (ident,))
            row = await cur.fetchone()
            released = bool(row and row[0])
        except (psycopg.Error, OSError) as exc:
            log.warning("workspace_lock_lost", workspace=key, error=str(exc))
            released = False
        except BaseException:  # cancelled: closing the session frees the lock
            await conn.close()
            raise
        if not released or self._closed or len(self._idle) >= self._max_idle:
            await conn.close()  # no await inside: a cancellation cannot skip it
        else:
            self._idle.append(conn)

    async def _drop_idle(self) -> None:
        idle, self._idle = self._idle, []
        for conn in idle:
            await conn.close()

    async def close(self) -> None:
        self._closed = True
        await self._drop_idle()


def workspace_locks(storage_url: str) -> WorkspaceLocks:
    """Advisory locks when storage is on Postgres (replicas may share the volume); else
    the in-process lock alone."""
    if storage_url.startswith(("postgresql://", "postgres://")):
        return PostgresLocks(storage_url)
    return LocalLocks()
