"""Delivers committed replies through their connectors until each is confirmed.

Order is kept per chat: when one message to a chat fails, later ones to that chat
wait for it. Retryable failures back off exponentially (or as long as the platform
asks); permanent ones are marked failed with the reason and audited.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from typing import Literal

import structlog

from nexflow.bus.events import Outbound
from nexflow.config.model import OutboxConfig
from nexflow.gateway.connector import Connector, DeliveryError
from nexflow.observability.metrics import Metrics
from nexflow.storage.base import AuditRecord, OutboxItem, Storage

log = structlog.get_logger("nexflow.outbox")
Outcome = Literal["delivered", "dead", "retry"]


class OutboxDispatcher:
    def __init__(
        self,
        storage: Storage,
        config: OutboxConfig,
        metrics: Metrics,
        batch: int = 256,
        parallel_chats: int = 16,
    ) -> None:
        self._storage = storage
        self._config = config
        self._metrics = metrics
        self._batch = batch
        self._connectors: dict[str, Connector] = {}
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._chat_slots = asyncio.Semaphore(parallel_chats)

    def attach(self, channel: str, connector: Connector) -> None:
        self._connectors[channel] = connector

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
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
            self._task = None

    async def _run(self) -> None:
        while True:
            self._wake.clear()
            try:
                await self.deliver_due()
                next_due = await self._storage.next_outbox_due()
            except Exception:
                log.exception("outbox_round_failed")
                self._metrics.errors.labels("outbox").inc()
                next_due = time.time() + self._config.initial_backoff_s
            timeout = None if next_due is None else max(0.0, next_due - time.time())
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), timeout)

    async def deliver_due(self) -> int:
        """Deliver everything due now; returns how many were delivered."""
        items = await self._storage.due_outbox(time.time(), self._batch)
        by_chat: dict[tuple[str, str], list[OutboxItem]] = {}
        for item in items:
            by_chat.setdefault((item.outbound.channel, item.outbound.chat_id), []).append(item)
        counts = await asyncio.gather(*(self._deliver_chat(chat) for chat in by_chat.values()))
        return sum(counts)

    async def _deliver_chat(self, items: list[OutboxItem]) -> int:
        delivered = 0
        async with self._chat_slots:
            for item in items:
                outcome = await self._deliver_one(item)
                if outcome == "retry":
                    break  # keep per-chat order: later messages wait for this one
                delivered += outcome == "delivered"
        return delivered

    async def _deliver_one(self, item: OutboxItem) -> Outcome:
        out = item.outbound
        connector = self._connectors.get(out.channel)
        try:
            if connector is None:
                raise DeliveryError(f"connector {out.channel!r} is not running")
            await connector.send(out)
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
        final = not exc.retryable or attempts >= self._config.max_attempts
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
        delay = exc.retry_after_s or min(
            self._config.max_backoff_s, self._config.initial_backoff_s * 2 ** (attempts - 1)
        )
        await self._storage.mark_retry(item.id, exc.reason, time.time() + delay)
        log.info(
            "delivery_retry",
            channel=channel,
            outbox_id=item.id,
            in_s=round(delay, 2),
            reason=exc.reason,
        )
        return "retry"
