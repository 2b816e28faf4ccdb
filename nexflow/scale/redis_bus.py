"""The event bus on Redis pub/sub (contract in :mod:`nexflow.scale.bus`), for deployments
with ``redis.url`` set: it takes the token streams off Postgres.

One client (a small pool) publishes; one pub/sub connection listens. A bus channel is the
Redis channel ``nexflow:bus:<channel>`` (Redis channel names are binary-safe; no limit on
payload size that matters here). ``SUBSCRIBE`` is only sent on the listening connection;
the reader sees Redis's confirmation and only then does :meth:`subscribe` return. The
listening connection also subscribes to a channel of its own so it is never idle-closed
for having no subscriptions.

redis-py would reconnect a pub/sub connection by itself, silently; the bus turns that off
(no retries) and reconnects in its own loop, so a gap is logged and reported to the
subscriptions like on Postgres.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import uuid
from collections.abc import Mapping
from typing import Any

import structlog

from nexflow.backoff import Backoff
from nexflow.scale.bus import DEFAULT_QUEUE_SIZE, Hub, encode
from nexflow.scale.errors import ScaleUnavailable
from nexflow.storage.engine import redact

log = structlog.get_logger("nexflow.scale.bus")

DEFAULT_BACKOFF = Backoff(base_s=0.2, cap_s=10.0, jitter=0.5)
PREFIX = "nexflow:bus:"


class RedisBus(Hub):
    """Redis pub/sub (see the module docstring)."""

    def __init__(
        self,
        url: str,
        *,
        name: str = "nexflow",
        queue_size: int = DEFAULT_QUEUE_SIZE,
        ready_timeout_s: float = 10.0,
        backoff: Backoff = DEFAULT_BACKOFF,
    ) -> None:
        super().__init__(queue_size)
        self._url = url
        self._name = name
        self._ready_timeout_s = ready_timeout_s
        self._backoff = backoff
        self._client: Any = None
        self._pubsub: Any = None
        self._control = f"{PREFIX}~control:{uuid.uuid4().hex}"
        self._listening: set[str] = set()
        self._waiters: dict[str, asyncio.Future[None]] = {}
        self._task: asyncio.Task[None] | None = None

    @property
    def client_name(self) -> str:
        """The ``CLIENT SETNAME`` of this bus's connections (ops, tests; the listening
        one is the one with subscriptions in ``CLIENT LIST``)."""
        return f"{self._name}-bus".replace(" ", "-")

    async def open(self) -> None:
        import redis.asyncio as aioredis
        from redis.asyncio.retry import Retry
        from redis.backoff import NoBackoff
        from redis.exceptions import RedisError

        self._client = aioredis.Redis.from_url(
            self._url,
            decode_responses=True,
            retry=Retry(NoBackoff(), 0),
            client_name=self.client_name,
        )
        try:
            await self._client.ping()
            pubsub = await self._subscribe_all()
        except (RedisError, OSError) as exc:
            await self._client.aclose()
            raise ScaleUnavailable(f"cannot connect to {redact(self._url)}: {exc}") from exc
        self._task = asyncio.create_task(self._run(pubsub), name="redis-bus-listener")

    async def close(self) -> None:
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        if self._client is not None:
            await self._client.aclose()
        for waiter in self._waiters.values():
            waiter.cancel()
        self._close_all()

    async def publish(self, channel: str, payload: Mapping[str, Any]) -> None:
        from redis.exceptions import RedisError

        text = encode(payload)
        try:
            await self._client.publish(PREFIX + channel, text)
        except (RedisError, OSError) as exc:
            raise ScaleUnavailable(f"bus publish failed: {exc}") from exc

    async def _listen(self, channel: str) -> None:
        from redis.exceptions import RedisError

        target = PREFIX + channel
        if target in self._listening:
            return
        waiter = self._waiters.get(target)
        if waiter is None:
            waiter = self._waiters[target] = asyncio.get_running_loop().create_future()
            if self._pubsub is not None:  # else the reconnect subscribes to it
                with contextlib.suppress(RedisError, OSError):  # the reader sees it too
                    await self._pubsub.subscribe(target)
        try:
            async with asyncio.timeout(self._ready_timeout_s):
                await asyncio.shield(waiter)
        except TimeoutError as exc:
            raise ScaleUnavailable(f"bus: not subscribed to {channel!r} yet (Redis down?)") from exc

    async def _unlisten(self, channel: str) -> None:
        from redis.exceptions import RedisError

        target = PREFIX + channel
        if self._pubsub is not None and target in self._listening:
            # Forget it now: a subscriber arriving before Redis confirms must subscribe
            # again (Redis answers UNSUBSCRIBE and SUBSCRIBE in order).
            self._listening.discard(target)
            with contextlib.suppress(RedisError, OSError):
                await self._pubsub.unsubscribe(target)

    async def _subscribe_all(self) -> Any:
        """A new pub/sub connection subscribed to every channel with subscribers (also
        those that came while it was being made), then used by :meth:`_listen`."""
        pubsub = self._client.pubsub()
        sent = {PREFIX + c for c in self._subs}
        await pubsub.subscribe(self._control, *sent)
        while missing := {PREFIX + c for c in self._subs} - sent:
            await pubsub.subscribe(*missing)
            sent |= missing
        self._pubsub = pubsub
        return pubsub

    async def _run(self, pubsub: Any) -> None:
        from redis.exceptions import RedisError

        failures = 0
        while True:
            if pubsub is None:
                try:
                    pubsub = await self._subscribe_all()
                except (RedisError, OSError) as exc:
                    failures += 1
                    log.warning("bus_reconnect_failed", backend="redis", error=str(exc))
                    await asyncio.sleep(self._backoff.delay(failures))
                    continue
                log.info("bus_reconnected", backend="redis", after_attempts=failures)
                failures = 0
            try:
                await self._read(pubsub)
            except (RedisError, OSError) as exc:
                log.warning(
                    "bus_connection_lost",
                    backend="redis",
                    error=str(exc),
                    note="reconnecting; messages published until then are lost",
                )
                self._pubsub = None
                self._listening.clear()
                self._gap_all("the connection to Redis was lost")
                with contextlib.suppress(Exception):  # it is broken already
                    await pubsub.aclose()
                pubsub = None
                failures += 1
                await asyncio.sleep(self._backoff.delay(failures))

    async def _read(self, pubsub: Any) -> None:
        while True:
            message = await pubsub.get_message(timeout=None)
            if message is None:
                continue
            kind, target = message["type"], message["channel"]
            if kind == "subscribe":
                self._listening.add(target)
                waiter = self._waiters.pop(target, None)
                if waiter is not None and not waiter.done():
                    waiter.set_result(None)
            elif kind == "unsubscribe":
                self._listening.discard(target)
            elif kind == "message" and target.startswith(PREFIX):
                channel = target.removeprefix(PREFIX)
                try:
                    payload = json.loads(message["data"])
                except ValueError:
                    log.warning("bus_bad_frame", backend="redis", channel=channel)
                    continue
                if isinstance(payload, dict):
                    self._deliver(channel, payload)
