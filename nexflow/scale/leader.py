"""Leader election for the singletons of a deployment: one Telegram poller per bot token,
one Discord gateway connection per shard, one sweeper.

``async with leadership.campaign("telegram:<bot id>") as term:`` waits until this process
leads ``telegram:<bot id>`` and keeps leading it until the block ends or ``term.lost`` is
set; :func:`lead` is the loop a singleton runs in: campaign, run the work while leading,
cancel it when leadership is lost, campaign again (with backoff after failures).

- :class:`LocalLeadership` (one gateway): leader at once; two campaigns for one name in
  one process still take turns.
- :class:`PostgresLeadership`: a session-level advisory lock
  ``pg_advisory_lock(hashtextextended(name, 0))`` (64-bit, so two names practically never
  share a lock; ``hashtext`` is 32-bit) held by a connection of its own per campaign.
  When the leader's connection ends (its process is SIGKILLed, the backend is
  terminated, the network drops), Postgres frees the lock. A follower asks with
  ``pg_try_advisory_lock`` every ``poll_s`` (0.5 s), idle in between: a *blocking*
  ``pg_advisory_lock`` would keep a statement, and so a transaction, open for as long as
  the follower waits, and DDL that waits for every older transaction to end (DBOS's
  ``CREATE INDEX CONCURRENTLY`` when a worker first migrates its schema) would wait
  forever behind it. The leader learns it lost the lock by the connection's socket
  becoming readable (a terminated backend sends an error and closes; TCP keepalives make
  a silent peer fail within ~11 s), then a query that fails: no heartbeat polling.

Leadership is not a fence: for a moment after a network split the old leader may not yet
know what the database already decided. The singletons tolerate it (Telegram answers a
second ``getUpdates`` with 409 Conflict; Discord closes the older session of a shard).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass, field
from typing import Any, Protocol

import structlog

from nexflow.backoff import Backoff
from nexflow.scale.errors import ScaleUnavailable
from nexflow.storage.engine import redact, session_args

log = structlog.get_logger("nexflow.scale.leader")

DEFAULT_BACKOFF = Backoff(base_s=0.5, cap_s=30.0, jitter=0.5)


@dataclass(eq=False)
class Term:
    """One term of leadership of ``name``. ``lost`` is set when this process is no
    longer the leader: the connection holding the lock broke or the term ended."""

    name: str
    lost: asyncio.Event = field(default_factory=asyncio.Event)


class Leadership(Protocol):
    """Elects one leader per name among the processes sharing a backend."""

    def campaign(self, name: str) -> AbstractAsyncContextManager[Term]:
        """Wait until this process leads ``name``; lead until the block ends.

        Raises :class:`~nexflow.scale.errors.ScaleUnavailable` when the backend cannot
        be reached (while waiting or on the way in); :func:`lead` retries it."""
        ...


class LocalLeadership:
    """One process: leader at once (campaigns for the same name take turns)."""

    def __init__(self) -> None:
        self._locks: dict[str, asyncio.Lock] = {}

    @contextlib.asynccontextmanager
    async def campaign(self, name: str) -> AsyncIterator[Term]:
        lock = self._locks.setdefault(name, asyncio.Lock())
        async with lock:
            term = Term(name)
            try:
                yield term
            finally:
                term.lost.set()


class PostgresLeadership:
    """Advisory-lock elections on a Postgres server (see the module docstring).

    ``url`` is the storage URL; each campaign opens one connection to it (named
    ``nexflow leader <name>`` in ``pg_stat_activity``) and closes it at the end of the
    term, which is also what frees the lock."""

    def __init__(self, url: str, *, connect_timeout_s: float = 10.0, poll_s: float = 0.5) -> None:
        self._url = url
        self._poll_s = poll_s
        self._connect_timeout_s = connect_timeout_s

    @contextlib.asynccontextmanager
    async def campaign(self, name: str) -> AsyncIterator[Term]:
        import psycopg

        try:
            args = session_args(f"nexflow leader {name}", connect_timeout_s=self._connect_timeout_s)
            conn = await psycopg.AsyncConnection.connect(self._url, **args)
        except psycopg.Error as exc:
            raise ScaleUnavailable(f"cannot connect to {redact(self._url)}: {exc}") from exc
        try:
            try:
                # A server-wide statement or lock timeout must not end the wait.
                await conn.execute("SET statement_timeout = 0")
                await conn.execute("SET lock_timeout = 0")
                while True:
                    if await _try_lock(conn, name):
                        break
                    await asyncio.sleep(self._poll_s)
            except psycopg.Error as exc:
                raise ScaleUnavailable(f"campaign for {name!r} failed: {exc}") from exc
            term = Term(name)
            watcher = asyncio.create_task(_watch(conn, term), name=f"leader-watch:{name}")
            try:
                yield term
            finally:
                watcher.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await watcher
                term.lost.set()
        finally:
            # Closing the session frees the lock (a lock won just before a cancellation
            # goes with the session too).
            with contextlib.suppress(Exception):  # the connection may be broken already
                await conn.close()


async def _try_lock(conn: Any, name: str) -> bool:
    """One non-blocking attempt at ``name``'s lock (see the module docstring)."""
    cur = await conn.execute("SELECT pg_try_advisory_lock(hashtextextended(%s, 0))", (name,))
    row = await cur.fetchone()
    return bool(row and row[0])


async def _watch(conn: Any, term: Term) -> None:
    """Set ``term.lost`` when the leader's connection ends (see the module docstring)."""
    import psycopg

    loop = asyncio.get_running_loop()
    try:
        while True:
            readable: asyncio.Future[None] = loop.create_future()
            fd = conn.fileno()
            loop.add_reader(fd, _resolve, readable)
            try:
                await readable
            finally:
                loop.remove_reader(fd)
            # Something arrived: a notice, or the end of the session. Find out which.
            await conn.execute("SELECT 1")
    except (psycopg.Error, OSError) as exc:
        log.warning("leadership_lost", name=term.name, error=str(exc))
        term.lost.set()


def _resolve(future: asyncio.Future[None]) -> None:
    if not future.done():
        future.set_result(None)


Work = Callable[[Term], Awaitable[None]]


async def lead(
    leadership: Leadership,
    name: str,
    work: Work,
    stop: asyncio.Event,
    *,
    backoff: Backoff = DEFAULT_BACKOFF,
) -> None:
    """Run ``work(term)`` while this process leads ``name``, until ``stop`` is set.

    When leadership is lost, ``work`` is cancelled and the process campaigns again after
    a backoff delay (counting losses and backend failures since leadership was last
    won). Returns when ``stop`` is set or when ``work`` returns; an error raised by
    ``work`` propagates (its supervisor decides)."""

    async def campaigns() -> None:
        failures = 0
        while True:
            try:
                async with leadership.campaign(name) as term:
                    log.info("leadership_won", name=name)
                    failures = 0
                    if not await _race(work(term), term.lost.wait()):
                        return
            except ScaleUnavailable as exc:
                log.warning("campaign_failed", name=name, error=str(exc))
            failures += 1
            delay = backoff.delay(failures)
            log.info("campaign_again", name=name, in_s=round(delay, 2))
            await asyncio.sleep(delay)

    await _race(campaigns(), stop.wait())


async def _race(main: Awaitable[None], other: Awaitable[Any]) -> bool:
    """Run both; when one finishes, cancel the other. True when ``other`` finished first
    (``main`` was cancelled); False when ``main`` returned; ``main``'s error propagates."""
    main_task = asyncio.ensure_future(main)
    other_task = asyncio.ensure_future(other)
    try:
        await asyncio.wait({main_task, other_task}, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for task in (other_task, main_task):
            if not task.done():
                task.cancel()
        await asyncio.gather(main_task, other_task, return_exceptions=True)
    if main_task.cancelled():
        return True
    error = main_task.exception()
    if error is not None:
        raise error
    return False


def leadership_for(storage_url: str) -> Leadership:
    """Advisory-lock elections when storage is on Postgres; else one process leads."""
    if storage_url.startswith(("postgresql://", "postgres://")):
        return PostgresLeadership(storage_url)
    return LocalLeadership()
