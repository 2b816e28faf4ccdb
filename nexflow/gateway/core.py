"""The gateway: the one publish step every connector uses, the lanes, and reply waiters.

``publish`` runs the middleware chain and commits the event to the inbox; the bus then
hands the inbox id to the :class:`~nexflow.gateway.turns.TurnRunner` on the session's
lane. A parked turn holds no worker: the user's answer (``ApprovalService.answer``) puts
it back on its lane, and an :class:`ExpiryTimer` closes the ones nobody answers.

Replicas (several gateways on one Postgres): a lane runs a turn only under its session's
lease (:class:`~nexflow.gateway.replicas.SessionLeases`); a turn whose session another
replica holds is left to it, and a caller waiting here for such a turn's reply reads it
from storage (every ``poll_s``, only while the turn is not queued or running here).
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import replace
from typing import Protocol

import structlog

from nexflow.bus.bus import Bus
from nexflow.bus.errors import InvalidMessage, NotAllowed, Overloaded, UnknownSession
from nexflow.bus.events import InboundEvent
from nexflow.bus.middleware import Accepted, Middleware, PublishContext, build_chain
from nexflow.config.model import BusConfig
from nexflow.gateway.replicas import SessionLeases
from nexflow.gateway.stop import RemoteStops
from nexflow.gateway.turns import TurnRunner, TurnSummary
from nexflow.observability.metrics import Metrics
from nexflow.scale.errors import ScaleUnavailable
from nexflow.storage.base import InboxItem, Queue, SessionRecord, Sessions, StorageError, Turns
from nexflow.storage.repo_leases import FenceLost

__all__ = ["ExpiryTimer", "Gateway", "TurnSummary"]

log = structlog.get_logger("nexflow.gateway")


class ExpiryTimer:
    """Sleeps until the next deadline (``next_due``), then calls ``fire``; ``wake`` makes it
    look again (a new, possibly earlier deadline). One owned task; no polling."""

    def __init__(
        self,
        next_due: Callable[[], Awaitable[float | None]],
        fire: Callable[[], Awaitable[object]],
        *,
        name: str,
        retry_s: float = 30.0,
    ) -> None:
        self._next_due = next_due
        self._fire = fire
        self._name = name
        self._retry_s = retry_s
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        if self._task is None:
            self._task = asyncio.create_task(self._run(), name=self._name)

    def wake(self) -> None:
        self._wake.set()

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
            self._task = None

    async def _run(self) -> None:
        while True:
            self._wake.clear()
            try:
                due = await self._next_due()
                if due is not None and due <= time.time():
                    await self._fire()  # only when something is due: a wake-up just looks
                    continue
            except Exception:
                log.exception("timer_round_failed", timer=self._name)
                due = time.time() + self._retry_s
            timeout = None if due is None else max(0.0, due - time.time()) + 0.01
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), timeout)


class GatewayStorage(Sessions, Queue, Turns, Protocol):
    """What the gateway itself reads and writes: an event's session, the inbox (and a
    duplicate's reply), and when the next approval expires."""


class Gateway:
    def __init__(
        self,
        storage: GatewayStorage,
        runner_factory: Callable[[Gateway], TurnRunner],
        metrics: Metrics,
        bus_config: BusConfig,
        middlewares: Sequence[Middleware],
        max_message_chars: int,
        replicas: SessionLeases,
    ) -> None:
        self._storage = storage
        self._max_chars = max_message_chars
        self._waiters: dict[int, list[asyncio.Future[TurnSummary]]] = {}
        self.replicas = replicas
        self._local: dict[str, set[int]] = {}  # session -> its turns queued here
        self._active: dict[str, int] = {}  # session -> its turn running here
        self._here: set[int] = set()  # inbox ids queued or running here
        self.runner = runner_factory(self)
        self.remote_stops: RemoteStops | None = None  # set with replicas (the bus is theirs)
        self._bus: Bus[tuple[str, int]] = Bus(
            self._process,
            concurrency=bus_config.concurrency,
            max_pending=bus_config.max_pending,
            on_depth=metrics.queue_depth.set,
        )
        self._publish = build_chain(middlewares, self._accept)
        self.expiry = ExpiryTimer(
            storage.next_approval_expiry, self.runner.expire_due, name="nexflow-approval-expiry"
        )

    # -- lifecycle ----------------------------------------------------------------

    async def start(self) -> int:
        """Start the workers, re-queue everything accepted (or interrupted) but not answered,
        and start the approval expiry timer (which closes what expired while we were down).
        With replicas, a re-queued turn runs here only if its session's lease is free."""
        await self.replicas.start(self._take, self._busy)
        self._bus.start()
        pending = await self._storage.pending_inbox()
        for item in pending:
            if item.event.session_id:
                self.resume(item.event.session_id, item.id)
        if pending:
            log.info("inbox_recovered", count=len(pending))
        self.expiry.start()
        return len(pending)

    async def stop(self) -> None:
        await self.expiry.stop()
        await self._bus.stop()
        await self.replicas.stop()
        for futures in self._waiters.values():
            for fut in futures:
                fut.cancel()
        self._waiters.clear()

    @property
    def queue_depth(self) -> int:
        return self._bus.pending

    def resume(self, session_id: str, inbox_id: int) -> None:
        """Put a turn (new, answered or to retry) on its session's lane."""
        self._queue(session_id, inbox_id)

    def _queue(self, session_id: str, inbox_id: int) -> bool:
        """False when the lanes are full: the turn stays pending (the next start, or a
        replica's sweep, runs it)."""
        queued = self._local.setdefault(session_id, set())
        if inbox_id in queued:
            return True
        try:
            self._bus.submit(session_id, (session_id, inbox_id))
        except Overloaded:
            log.warning("turn_not_queued", inbox_id=inbox_id, queue=self._bus.pending)
            if not queued:
                del self._local[session_id]
            return False
        queued.add(inbox_id)
        self._here.add(inbox_id)
        return True

    def _take(self, session_id: str, inbox_ids: list[int]) -> int:
        return sum(self._queue(session_id, i) for i in inbox_ids)

    def _busy(self, session_id: str) -> bool:
        return session_id in self._local or session_id in self._active

    async def _process(self, job: tuple[str, int]) -> None:
        """One turn of a lane, under its session's lease; after the session's last turn
        here the lease is settled (released, or kept for turns other replicas accepted)."""
        session_id, inbox_id = job
        queued = self._local.get(session_id)
        if queued is not None:
            queued.discard(inbox_id)
            if not queued:
                del self._local[session_id]
        self._active[session_id] = inbox_id
        try:
            held = await self.replicas.hold(session_id)
            if held is not None:
                await self.runner.process(inbox_id, fence=held.fence)
            else:
                log.debug("turn_left_to_holder", session_id=session_id, inbox_id=inbox_id)
        except FenceLost:
            log.warning("turn_fenced_off", session_id=session_id, inbox_id=inbox_id)
            self.replicas.forget(session_id)
        except ScaleUnavailable:  # the row stays pending: a sweep runs it
            log.warning("lease_unavailable", session_id=session_id, exc_info=True)
        except Exception:  # e.g. the database is down: the row stays pending
            log.exception("turn_not_run", session_id=session_id, inbox_id=inbox_id)
            # Hand the session back rather than retry here at once: a replica's sweep
            # (or the next start) runs it.
            with contextlib.suppress(ScaleUnavailable):
                await self.replicas.drop(session_id)
        finally:
            del self._active[session_id]
            if inbox_id not in self._local.get(session_id, ()):  # else queued again (a retry)
                self._here.discard(inbox_id)
        if session_id not in self._local:
            await self._settle(session_id)

    async def _settle(self, session_id: str) -> None:
        try:
            left = await self.replicas.settle(session_id)
            if left and not self._take(session_id, left) and not self._busy(session_id):
                await self.replicas.drop(session_id)
        except (ScaleUnavailable, StorageError):  # the lease expires; a sweep moves on
            log.warning("lease_settle_failed", session_id=session_id, exc_info=True)

    def stop_turn(self, session_id: str) -> int | None:
        """Stop the turn ``session_id`` runs now here; the inbox id of the stopped turn,
        or None when none runs here."""
        return self.runner.stop(session_id)

    async def stop_session(self, session_id: str, user_id: str) -> int | None:
        """Stop the session's running turn (the chat's Stop button), here or, with
        replicas, on the replica running it (which checks ``user_id`` owns the session);
        the inbox id of the stopped turn, or None when none runs (or it was refused).
        As on one gateway, only the running turn stops; turns queued behind it run next."""
        stopped = self.stop_turn(session_id)
        if stopped is not None or self.remote_stops is None or self.answers_stop(session_id):
            return stopped  # its turns run or wait here: nothing runs now
        if not await self.replicas.held_elsewhere(session_id):
            return None  # nothing runs anywhere (turns left wait for a sweep): answer now
        return await self.remote_stops.request(session_id, user_id)

    def running_here(self, session_id: str) -> bool:
        return session_id in self._active

    def answers_stop(self, session_id: str) -> bool:
        """A Stop for the session is answered here: this replica holds its lease, so its
        turns run or are queued here (on one gateway: a turn of it runs)."""
        return self.replicas.holds(session_id)

    # -- publish ------------------------------------------------------------------

    async def publish(self, event: InboundEvent) -> Accepted:
        """Run the middleware chain and commit the event to the inbox.

        Raises :class:`~nexflow.bus.errors.Rejected` if it is not accepted.
        """
        return await self._publish(event, PublishContext())

    async def _accept(self, event: InboundEvent, ctx: PublishContext) -> Accepted:
        if not event.message.strip() and not event.attachments:
            raise InvalidMessage("The message is empty.")
        if len(event.message) > self._max_chars:
            raise InvalidMessage(
                f"The message is {len(event.message)} characters long; the limit is "
                f"{self._max_chars} (web.max_message_chars)."
            )
        session = await self._session_for(event)
        # A web conversation is its session: replies, cards and their order follow it.
        chat_id = session.id if event.channel == "web" else event.chat_id
        event = replace(event, session_id=session.id, chat_id=chat_id)
        inbox_id, duplicate = await self._storage.accept(event)
        if not duplicate:
            self._bus.submit(session.id, (session.id, inbox_id))
            self._local.setdefault(session.id, set()).add(inbox_id)
            self._here.add(inbox_id)
        return Accepted(inbox_id, session.id, event, duplicate)

    async def _session_for(self, event: InboundEvent) -> SessionRecord:
        user_id = event.user_id or ""
        if event.session_id is None:
            if event.channel == "web":
                return await self._storage.ensure_session(
                    None, user_id, event.channel, event.chat_id
                )
            return await self._storage.chat_session(user_id, event.channel, event.chat_id)
        session = await self._storage.get_session(event.session_id)
        if session is None:
            raise UnknownSession(
                f"There is no session {event.session_id!r}; leave 'session' out to start a new one."
            )
        if session.user_id != user_id:
            raise NotAllowed("That session belongs to someone else.")
        return session

    # -- waiting for a reply ------------------------------------------------------

    def waiting(self, inbox_id: int) -> bool:
        """A synchronous caller (``POST /api/v1/chat``) waits for this turn's reply."""
        return bool(self._waiters.get(inbox_id))

    def turn_done(self, summary: TurnSummary) -> None:
        for fut in self._waiters.get(summary.inbox_id, ()):
            if not fut.done():
                fut.set_result(summary)

    async def wait_reply(
        self, inbox_id: int, timeout_s: float, *, duplicate: bool = False
    ) -> TurnSummary | None:
        """The turn's result, or None if it is not done within ``timeout_s``.

        Call it right after :meth:`publish` (before awaiting anything else), so the
        waiter is registered before the turn can finish. For a ``duplicate`` the stored
        reply of the first delivery is returned if there is one.
        """
        fut: asyncio.Future[TurnSummary] = asyncio.get_running_loop().create_future()
        self._waiters.setdefault(inbox_id, []).append(fut)
        try:
            if duplicate and (done := await self._storage.outbox_for_inbox(inbox_id)) is not None:
                item = await self._storage.get_inbox(inbox_id)
                text = getattr(done.outbound, "text", "")
                session_id = item.event.session_id if item and item.event.session_id else ""
                return TurnSummary(inbox_id, session_id, text, [])
            if self.replicas.shared:
                return await self._wait_shared(inbox_id, fut, timeout_s)
            return await asyncio.wait_for(fut, timeout_s)
        except TimeoutError:
            return None
        finally:
            futures = self._waiters.get(inbox_id, [])
            if fut in futures:
                futures.remove(fut)
            if not futures:
                self._waiters.pop(inbox_id, None)

    async def _wait_shared(
        self, inbox_id: int, fut: asyncio.Future[TurnSummary], timeout_s: float
    ) -> TurnSummary:
        """Wait for a turn that may run on another replica: the local result, or, while
        the turn is not queued or running here, its reply read from storage."""
        deadline = time.monotonic() + timeout_s
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                raise TimeoutError
            with contextlib.suppress(TimeoutError):
                return await asyncio.wait_for(asyncio.shield(fut), min(left, self.replicas.poll_s))
            if inbox_id in self._here:
                continue
            done = await self.replicas.store.reply_or_dead_letter(inbox_id)
            if isinstance(done, InboxItem):  # a dead letter: its notice is not a reply
                text = self.runner.dead_letter_text(done)
                return TurnSummary(inbox_id, done.event.session_id or "", text, [], "dead_letter")
            if done is not None:
                out = done.outbound
                if out.channel == "web" and done.status in ("pending", "parked"):
                    # The caller takes it in its response, as when the turn runs here.
                    await self.replicas.store.settle_reply(done.id)
                text = getattr(out, "text", "")
                return TurnSummary(inbox_id, out.session_id or "", text, [])
