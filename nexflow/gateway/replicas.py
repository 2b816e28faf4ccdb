"""Replicas of one deployment: a session's turns run on one replica at a time.

Several ``nexflow serve`` processes on one Postgres (docs/scale-out.md "Replicas") each
accept messages into the shared inbox and run turns from it. :class:`SessionLeases` keeps
a session's turns in order across them with the lease board
(:mod:`nexflow.scale.leases`):

* **A turn runs under its session's lease** ``session:<id>``. :meth:`SessionLeases.hold`
  takes it before a run (or reuses the one this replica holds); when another live replica
  holds it, the run is skipped here: that replica runs the turn after its current one.
  The run's commit carries the lease's :class:`~nexflow.storage.repo_leases.Fence`, so a
  replica that stalled past its lease cannot commit over the new holder's work.
* **Renewed while it works, given back when the session is idle.** A renewal task keeps
  every held lease alive (every ``renew_s``, at most half the TTL); after a session's
  last local turn :meth:`SessionLeases.settle` releases the lease only if the session
  has no turn left to run (one statement), else hands back the turns other replicas
  accepted meanwhile, to run next here. Timings: ``replicas:`` in the config.
* **A sweeper** (every ``sweep_s``) takes sessions that have turns left and no live
  lease: a dead replica's (its lease expired ``ttl_s`` after its last renewal), or a turn
  accepted in the instant a lease was being released (the accepting replica found it
  taken, the releasing one did not see the turn yet). Startup recovery goes through
  :meth:`hold` too, so it takes over only sessions whose lease has expired (or that this
  replica, same owner id, held before it was restarted).

On SQLite (one process) the board is the in-memory one: :meth:`hold` and :meth:`settle`
are a dict lookup, with no task, no sweep and no database round trip.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

import structlog

from nexflow.scale.errors import ScaleUnavailable
from nexflow.scale.leases import Lease, LeaseBoard, MemoryLeaseBoard, lease_board_for
from nexflow.storage.base import InboxItem, OutboxItem, StorageError
from nexflow.storage.engine import Engine
from nexflow.storage.repo_leases import Fence

__all__ = ["Held", "ReplicaStore", "SessionLeases", "replica_owner"]

log = structlog.get_logger("nexflow.replicas")
Take = Callable[[str, list[int]], int]  # queue a session's turns here; how many were queued


class ReplicaStore(Protocol):
    """What :class:`SessionLeases` and the reply waiters read (``SQLStorage`` has it)."""

    @property
    def engine(self) -> Engine: ...

    async def runnable_turns(self, session_id: str) -> list[int]: ...
    async def unleased_sessions(self, accepted_before: float, limit: int) -> list[str]: ...
    async def release_session_if_idle(self, fence: Fence, session_id: str) -> bool: ...
    async def reply_or_dead_letter(self, inbox_id: int) -> OutboxItem | InboxItem | None: ...
    async def settle_reply(self, outbox_id: int) -> bool: ...


@dataclass(slots=True)
class Held:
    """A session lease this replica holds; ``fence`` goes with the run's commits (None
    on one process)."""

    lease: Lease
    fence: Fence | None
    fresh_until: float  # monotonic: reused without asking the board until then


def replica_owner(home: Path) -> str:
    """This replica's owner id: the host and its ``NEXFLOW_HOME`` (each replica has its
    own). Stable across a restart, so a restarted replica takes its own sessions back
    at once instead of waiting for their leases to expire."""
    return f"{socket.gethostname()}:{home}"


class SessionLeases:
    """Session leases on the turn path (see the module docstring). Built by the
    composition root, started by :meth:`~nexflow.gateway.core.Gateway.start`."""

    def __init__(
        self,
        store: ReplicaStore,
        owner: str,
        *,
        ttl_s: float = 6.0,
        renew_s: float | None = None,
        sweep_s: float = 1.0,
        poll_s: float = 0.25,
        sweep_batch: int = 64,
    ) -> None:
        """Timings come from ``replicas:`` in the config (:class:`ReplicasConfig`, which
        checks them); ``renew_s`` None: a third of ``ttl_s``."""
        renew_s = ttl_s / 3 if renew_s is None else renew_s
        if not 0 < renew_s <= ttl_s / 2:
            raise ValueError(f"renew_s ({renew_s:g}) must be at most half of ttl_s ({ttl_s:g})")
        self._store = store
        self.owner = owner
        self.ttl_s = ttl_s
        self.renew_s = renew_s
        self.sweep_s = sweep_s
        self.poll_s = poll_s  # how often a waiter reads a reply a peer committed
        self._sweep_batch = sweep_batch
        self._board: LeaseBoard = MemoryLeaseBoard()
        self._held: dict[str, Held] = {}
        self._tasks: list[asyncio.Task[None]] = []

    @property
    def shared(self) -> bool:
        """True when other replicas may share the database (a Postgres board)."""
        return not isinstance(self._board, MemoryLeaseBoard)

    @property
    def store(self) -> ReplicaStore:
        return self._store

    def holding(self) -> list[str]:
        return sorted(self._held)

    def holds(self, session_id: str) -> bool:
        """This replica holds the session's lease (as far as it knows): its turns run or
        are queued here, and a Stop for it is answered here."""
        return session_id in self._held

    async def held_elsewhere(self, session_id: str) -> bool:
        """Another replica holds a live lease on the session (one primary-key read); True
        when the board cannot be read (the caller asks around rather than guess no)."""
        try:
            lease = await self._board.holder(f"session:{session_id}")
        except ScaleUnavailable:
            log.warning("lease_holder_unknown", session_id=session_id)
            return True
        return lease is not None and lease.owner != self.owner

    # -- lifecycle ------------------------------------------------------------------------

    async def start(self, take: Take, busy: Callable[[str], bool]) -> None:
        """Open the board; on Postgres start renewing and sweeping. ``take(session, ids)``
        queues a session's turns here (how many it queued); ``busy(session)``: turns of
        the session are queued or running here."""
        self._board = await lease_board_for(self._store.engine)
        if self.shared and not self._tasks:
            self._tasks = [
                asyncio.create_task(self._renew_loop(), name="nexflow-lease-renew"),
                asyncio.create_task(self._sweep_loop(take, busy), name="nexflow-lease-sweep"),
            ]

    async def stop(self) -> None:
        """Stop renewing and sweeping and give back every lease still held (turns cut
        short by the stop run again on whichever replica takes the session)."""
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        self._tasks = []
        held, self._held = list(self._held.values()), {}
        for h in held:
            with contextlib.suppress(ScaleUnavailable):
                await self._board.release(h.lease)

    # -- the turn path ------------------------------------------------------------------

    async def hold(self, session_id: str) -> Held | None:
        """The session's lease for a run here, or None when another replica holds it."""
        held = self._held.get(session_id)
        now = time.monotonic()
        if held is not None and now < held.fresh_until:
            return held
        lease = await self._board.acquire(f"session:{session_id}", self.owner, self.ttl_s)
        if lease is None:
            self._held.pop(session_id, None)
            return None
        fence = Fence(lease.key, lease.owner, lease.token) if self.shared else None
        held = self._held[session_id] = Held(lease, fence, now + self.ttl_s / 2)
        return held

    async def drop(self, session_id: str) -> None:
        """Give the session's lease back whatever is left (nothing could be queued here:
        the sweeper or another replica runs it)."""
        held = self._held.pop(session_id, None)
        if held is not None:
            await self._board.release(held.lease)

    def forget(self, session_id: str) -> None:
        """The lease turned out lost (a commit was fenced off): stop holding it."""
        self._held.pop(session_id, None)

    async def settle(self, session_id: str) -> list[int]:
        """The session has nothing queued here any more: release its lease, or return
        the turns left to run (accepted by other replicas) to queue here next."""
        held = self._held.get(session_id)
        if held is None:
            return []
        if held.fence is None:  # one process: nobody else accepts turns
            del self._held[session_id]
            await self._board.release(held.lease)
            return []
        if not await self._store.release_session_if_idle(held.fence, session_id):
            left = await self._store.runnable_turns(session_id)
            if not left:  # the lease was lost, not kept for work
                self._held.pop(session_id, None)
            return left
        # Released. A turn accepted elsewhere in the instant between this statement's
        # snapshot and its row lock found the lease taken: the sweeper runs it.
        self._held.pop(session_id, None)
        return []

    # -- background --------------------------------------------------------------------

    async def _renew_loop(self) -> None:
        while True:
            await asyncio.sleep(self.renew_s)
            for session_id, held in list(self._held.items()):
                started = time.monotonic()
                try:
                    kept = await self._board.renew(held.lease)
                except ScaleUnavailable:
                    log.warning("lease_renew_failed", session_id=session_id)
                    continue
                if self._held.get(session_id) is not held:
                    continue  # released or re-taken meanwhile
                if kept:
                    held.fresh_until = started + self.ttl_s / 2
                else:
                    log.warning("lease_lost", session_id=session_id, token=held.lease.token)
                    del self._held[session_id]

    async def _sweep_loop(self, take: Take, busy: Callable[[str], bool]) -> None:
        while True:
            await asyncio.sleep(self.sweep_s)
            try:
                await self.sweep(take, busy)
            except (ScaleUnavailable, StorageError):
                log.warning("lease_sweep_failed", exc_info=True)

    async def sweep(self, take: Take, busy: Callable[[str], bool]) -> int:
        """Take the sessions with turns left and no live lease; how many were taken."""
        # A turn accepted less than a sweep ago is its accepting replica's to run.
        sessions = await self._store.unleased_sessions(
            time.time() - self.sweep_s, self._sweep_batch
        )
        taken = 0
        for session_id in sessions:
            if busy(session_id) or await self.hold(session_id) is None:
                continue
            left = await self._store.runnable_turns(session_id)
            if left and take(session_id, left):
                taken += 1
                log.info("session_taken_over", session_id=session_id, turns=len(left))
            else:
                await self.drop(session_id)
        return taken
