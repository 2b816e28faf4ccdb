"""Delivers committed replies through their connectors until each is confirmed.

Order is kept per chat: when one message to a chat fails, later ones to that chat
wait for it. Retryable failures back off exponentially (:mod:`nexflow.backoff`, from
``outbox.initial_backoff_s`` doubling up to ``outbox.max_backoff_s``, or as long as the
platform asks) for ``outbox.max_attempts`` attempts; permanent ones are marked failed
with the reason and audited.

A connector that needs an acknowledgement (:class:`~nexflow.gateway.connector.Acknowledging`,
the web) keeps its order per session instead, and an item nobody is there to acknowledge
is *parked*: no attempt, no failure, not due until the session's client comes back and
un-parks it. Each chat (or session) is delivered by its own task, so a delivery waiting
for an acknowledgement never holds up other chats or channels.

Replicas: on Postgres the storage *claims* the rows it hands out (``claims_outbox``, see
:mod:`nexflow.storage.repo_queue`), so each due row goes to one replica, and nothing
behind it in its chat to another one. A lane keeps its claim while it works (renewed past
half the window, ``replicas.outbox_claim_s``), gives back the rows it did not attempt,
and takes the rows of its chat that a later round claims while it is still running. A
replica that dies mid-delivery leaves its claim to expire, then the row is delivered
again: at-least-once towards the platform, exactly once unless a replica dies between
sending and marking.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import time
from collections.abc import Sequence
from typing import Literal, Protocol

import structlog

from nexflow.backoff import Backoff
from nexflow.bus.events import Outbound
from nexflow.config.model import OutboxConfig
from nexflow.gateway.connector import Acknowledging, Connector, DeliveryError, Parked
from nexflow.observability.metrics import Metrics
from nexflow.storage.base import AuditRecord, OutboxItem
from nexflow.storage.parking import ParkingStorage

log = structlog.get_logger("nexflow.outbox")
Outcome = Literal["delivered", "dead", "retry", "parked"]
Lane = tuple[str, str]  # (channel, chat id) or, for acknowledging connectors, (channel, session)


class OutboxStorage(ParkingStorage, Protocol):
    """The dispatcher's storage: parking, and the claims replicas share rows by."""

    outbox_claim_s: float  # the claim window when the dispatcher is given none

    @property
    def claims_outbox(self) -> bool: ...

    async def claim_due_outbox(
        self, now: float, limit: int, claim_s: float | None = None
    ) -> list[OutboxItem]: ...
    async def claim_outbox(self, outbox_ids: Sequence[int], until: float) -> None: ...


class OutboxDispatcher:
    def __init__(
        self,
        storage: OutboxStorage,
        config: OutboxConfig,
        metrics: Metrics,
        batch: int = 256,
        parallel_chats: int = 16,
        *,
        claim_s: float | None = None,
    ) -> None:
        """``claim_s``: how long a claim on due rows keeps other replicas off them
        (``replicas.outbox_claim_s``; None: the storage's default)."""
        self._storage = storage
        self._config = config
        self._claim_s = storage.outbox_claim_s if claim_s is None else claim_s
        self._backoff = Backoff(
            config.initial_backoff_s, config.max_backoff_s, max_attempts=config.max_attempts
        )
        self._metrics = metrics
        self._batch = batch
        self._connectors: dict[str, Connector] = {}
        self._acknowledging: dict[str, Acknowledging] = {}
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._lanes: dict[Lane, asyncio.Task[int]] = {}  # lanes being delivered
        self._queues: dict[Lane, list[OutboxItem]] = {}  # what each lane delivers
        self._chat_slots = asyncio.Semaphore(parallel_chats)
        # Waiting for a tab's acknowledgement is idle time: those lanes are bounded apart.
        self._ack_slots = asyncio.Semaphore(batch)

    @property
    def claim_s(self) -> float:
        """How long a claim on due rows keeps other replicas off them."""
        return self._claim_s

    def attach(self, channel: str, connector: Connector) -> None:
        self._connectors[channel] = connector
        if isinstance(connector, Acknowledging):
            self._acknowledging[channel] = connector
        else:
            self._acknowledging.pop(channel, None)

    def notify(self) -> None:
        self._wake.set()

    async def post(self, out: Outbound) -> int:
        """Queue ``out`` durably and wake the dispatcher; returns the outbox id."""
        outbox_id = await self._storage.enqueue(out)
        self._wake.set()
        return outbox_id

    def start(self) -> None:
        if self._task is None:
            self._task = asyncio.create_task(self._run(), name="nexflow-outbox")

    async def stop(self) -> None:
        tasks = [t for t in (self._task, *self._lanes.values()) if t is not None]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        self._task = None
        self._lanes.clear()
        self._queues.clear()

    async def _run(self) -> None:
        while True:
            self._wake.clear()
            started: list[asyncio.Task[int]] = []
            try:
                started = self._start_lanes(
                    await self._storage.claim_due_outbox(time.time(), self._batch, self._claim_s)
                )
                next_due = await self._storage.next_outbox_due()
            except Exception:
                log.exception("outbox_round_failed")
                self._metrics.errors.labels("outbox").inc()
                next_due = time.time() + self._config.initial_backoff_s
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), self._sleep_for(next_due, started))

    def _sleep_for(self, next_due: float | None, started: list[asyncio.Task[int]]) -> float | None:
        if next_due is None:
            return None
        wait = next_due - time.time()
        if wait <= 0 and not started and self._lanes:
            # What is due belongs to lanes in flight (e.g. waiting for an acknowledgement);
            # each wakes this loop when it ends. Retries of other chats are looked at again
            # after the initial backoff instead of spinning.
            return self._config.initial_backoff_s
        return max(0.0, wait)

    async def deliver_due(self) -> int:
        """Deliver everything due now (except lanes already in flight) and wait for it;
        returns how many were delivered."""
        items = await self._storage.claim_due_outbox(time.time(), self._batch, self._claim_s)
        counts = await asyncio.gather(*self._start_lanes(items))
        return sum(counts)

    def _lane(self, item: OutboxItem) -> Lane:
        out = item.outbound
        if out.session_id and out.channel in self._acknowledging:
            return out.channel, "session:" + out.session_id
        return out.channel, out.chat_id

    def _start_lanes(self, items: list[OutboxItem]) -> list[asyncio.Task[int]]:
        by_lane: dict[Lane, list[OutboxItem]] = {}
        for item in items:
            by_lane.setdefault(self._lane(item), []).append(item)
        started: list[asyncio.Task[int]] = []
        for lane, queue in by_lane.items():
            running = self._lanes.get(lane)
            if running is not None:
                if not self._storage.claims_outbox:
                    continue  # in flight: its items are picked up again when it ends
                if not running.done():  # claimed for this replica: the lane takes them
                    known = {i.id for i in self._queues[lane]}
                    self._queues[lane].extend(i for i in queue if i.id not in known)
                    continue
            task = asyncio.create_task(self._deliver_lane(lane, queue), name="nexflow-outbox-lane")
            self._lanes[lane], self._queues[lane] = task, queue
            task.add_done_callback(functools.partial(self._lane_done, lane))
            started.append(task)
        return started

    def _lane_done(self, lane: Lane, task: asyncio.Task[int]) -> None:
        if self._lanes.get(lane) is task:
            del self._lanes[lane]
            del self._queues[lane]
        self._wake.set()

    async def _deliver_lane(self, lane: Lane, items: list[OutboxItem]) -> int:
        delivered = 0
        slots = self._ack_slots if lane[0] in self._acknowledging else self._chat_slots
        claims = self._storage.claims_outbox
        claimed_at = time.time()
        async with slots:
            try:
                n = 0
                while n < len(items):  # a later round may append this lane's rows
                    if claims and time.time() - claimed_at > self._claim_s / 2:
                        claimed_at = await self._claim([i.id for i in items[n:]])
                    outcome = await self._deliver_one(items[n])
                    n += 1
                    if outcome in ("retry", "parked"):
                        break  # keep per-chat order: later messages wait for this one
                    delivered += outcome == "delivered"
                if claims and n < len(items):  # not attempted: free for the next round
                    await self._storage.claim_outbox([i.id for i in items[n:]], time.time())
            except Exception:  # the database failed mid-lane: the items stay pending
                log.exception("outbox_lane_failed", channel=lane[0])
                self._metrics.errors.labels("outbox").inc()
        return delivered

    async def _claim(self, outbox_ids: list[int]) -> float:
        """Keep this replica's claim on a long lane's rows; when it was renewed."""
        renewed = time.time()
        await self._storage.claim_outbox(outbox_ids, renewed + self._claim_s)
        return renewed

    async def _deliver_one(self, item: OutboxItem) -> Outcome:
        out = item.outbound
        connector = self._connectors.get(out.channel)
        acknowledging = self._acknowledging.get(out.channel)
        try:
            if connector is None:
                raise DeliveryError(f"connector {out.channel!r} is not running")
            if acknowledging is not None:
                await acknowledging.deliver(out, item.id)
            else:
                await connector.send(out)
        except Parked as exc:
            await self._storage.park_outbox(item.id)
            log.info("delivery_parked", channel=out.channel, outbox_id=item.id, reason=exc.reason)
            return "parked"
        except DeliveryError as exc:
            return await self._failed(item, exc)
        except Exception as exc:
            log.exception("connector_send_crashed", channel=out.channel, outbox_id=item.id)
            return await self._failed(item, DeliveryError(f"{type(exc).__name__} in connector"))
        await self._storage.mark_delivered(item.id)
        self._metrics.messages_out.labels(out.channel).inc()
        return "delivered"

    async def _failed(self, item: OutboxItem, exc: DeliveryError) -> Outcome:
        channel = item.outbound.channel
        attempts = item.attempts + 1
        final = not exc.retryable or self._backoff.gives_up(attempts)
        self._metrics.delivery_failures.labels(channel, str(final).lower()).inc()
        if final:
            await self._storage.mark_failed(item.id, exc.reason)
            await self._storage.audit(
                [
                    AuditRecord(
                        "delivery",
                        channel,
                        "failed",
                        None,
                        item.outbound.session_id,
                        {"outbox_id": item.id, "reason": exc.reason, "attempts": attempts},
                    )
                ]
            )
            log.warning("delivery_failed", channel=channel, outbox_id=item.id, reason=exc.reason)
            return "dead"  # a dead message must not block the chat forever
        delay = self._backoff.delay(attempts, retry_after=exc.retry_after_s)
        await self._storage.mark_retry(item.id, exc.reason, time.time() + delay)
        log.info(
            "delivery_retry",
            channel=channel,
            outbox_id=item.id,
            in_s=round(delay, 2),
            reason=exc.reason,
        )
        return "retry"
