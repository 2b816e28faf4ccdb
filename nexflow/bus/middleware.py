"""The publish chain: an onion of middlewares with one signature.

``async def mw(handler, event, ctx) -> Accepted`` — call ``handler(event, ctx)`` to
go on, or raise :class:`~nexflow.bus.errors.Rejected` to stop.
"""

from __future__ import annotations

import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field, replace
from typing import Protocol

import structlog

from nexflow.bus.errors import NotAllowed, RateLimited, Rejected
from nexflow.bus.events import InboundEvent
from nexflow.config.model import RateLimitConfig, SecurityConfig
from nexflow.observability.metrics import Metrics


@dataclass(frozen=True, slots=True)
class Accepted:
    """The event is in the inbox (``inbox_id``), or was answered at once (``immediate``,
    e.g. ``/confirm``; then nothing was queued and ``inbox_id`` is 0)."""

    inbox_id: int
    session_id: str
    event: InboundEvent
    duplicate: bool = False
    immediate: str | None = None


@dataclass(slots=True)
class PublishContext:
    """Per-publish scratch space shared along the chain."""

    started: float = field(default_factory=time.perf_counter)
    role: str = "user"


Handler = Callable[[InboundEvent, PublishContext], Awaitable[Accepted]]


class Middleware(Protocol):
    async def __call__(
        self, handler: Handler, event: InboundEvent, ctx: PublishContext
    ) -> Accepted: ...


def build_chain(middlewares: Sequence[Middleware], final: Handler) -> Handler:
    """Compose so that ``middlewares[0]`` runs first (outermost)."""
    handler = final
    for mw in reversed(middlewares):
        handler = _bind(mw, handler)
    return handler


def _bind(mw: Middleware, inner: Handler) -> Handler:
    async def call(event: InboundEvent, ctx: PublishContext) -> Accepted:
        return await mw(inner, event, ctx)

    return call


class LogContext:
    """Binds channel/chat/user ids to every log line written while the event is published."""

    async def __call__(
        self, handler: Handler, event: InboundEvent, ctx: PublishContext
    ) -> Accepted:
        with structlog.contextvars.bound_contextvars(
            channel=event.channel, chat_id=event.chat_id, event_id=event.id
        ):
            return await handler(event, ctx)


class MetricsMiddleware:
    def __init__(self, metrics: Metrics) -> None:
        self._metrics = metrics

    async def __call__(
        self, handler: Handler, event: InboundEvent, ctx: PublishContext
    ) -> Accepted:
        try:
            accepted = await handler(event, ctx)
        except Rejected as exc:
            self._metrics.messages_rejected.labels(event.channel, exc.reason).inc()
            raise
        if not accepted.duplicate:
            self._metrics.messages_in.labels(event.channel).inc()
        return accepted


class UserDirectory(Protocol):
    async def find_user(self, channel: str, external_id: str) -> tuple[str, str] | None: ...
    async def create_user(self, name: str, role: str, channel: str, external_id: str) -> str: ...


class Identity:
    """Resolves the unified user id and applies the channel's access policy.

    ``trusted_channels`` (the authenticated web API) map every sender to the owner.
    """

    def __init__(
        self,
        users: UserDirectory,
        security: SecurityConfig,
        trusted_channels: frozenset[str] = frozenset({"web"}),
        cache_size: int = 10_000,
    ) -> None:
        self._users = users
        self._security = security
        self._trusted = trusted_channels
        self._cache: OrderedDict[tuple[str, str], tuple[str, str]] = OrderedDict()
        self._cache_size = cache_size

    async def __call__(
        self, handler: Handler, event: InboundEvent, ctx: PublishContext
    ) -> Accepted:
        key = (event.channel, event.sender_id)
        found = self._cache.get(key)
        if found is None:
            found = await self._resolve(event)
            self._cache[key] = found
            if len(self._cache) > self._cache_size:
                self._cache.popitem(last=False)
        user_id, ctx.role = found
        structlog.contextvars.bind_contextvars(user_id=user_id)
        return await handler(replace(event, user_id=user_id, role=ctx.role), ctx)

    async def _resolve(self, event: InboundEvent) -> tuple[str, str]:
        channel, sender = event.channel, event.sender_id
        is_owner = channel in self._trusted or sender in self._security.owner.get(channel, ())
        known = await self._users.find_user(channel, sender)
        if known is not None:
            return known
        access = self._security.channels.get(channel)
        policy = access.policy if access else "pairing"
        # A connector's own allow list (e.g. connectors.telegram.allowed_users) approves too.
        allowed = (access is not None and sender in access.allow) or (
            event.metadata.get("allowlisted") is True
        )
        if is_owner:
            return await self._users.create_user("owner", "owner", channel, sender), "owner"
        if policy == "open" or allowed:
            return await self._users.create_user(sender, "user", channel, sender), "user"
        if policy == "disabled":
            raise NotAllowed("This channel is disabled on this Nexflow.")
        raise NotAllowed(
            "You are not on this Nexflow's allow list. Ask its owner to add your id "
            f"({channel}:{sender}) under security.channels.{channel}.allow."
        )


class RateLimit:
    """A token bucket per user: ``burst`` messages at once, refilled at ``per_minute``."""

    def __init__(self, config: RateLimitConfig, max_users: int = 10_000) -> None:
        self._rate = config.per_minute / 60.0
        self._burst = float(config.burst)
        self._buckets: OrderedDict[str, tuple[float, float]] = OrderedDict()
        self._max_users = max_users

    async def __call__(
        self, handler: Handler, event: InboundEvent, ctx: PublishContext
    ) -> Accepted:
        if ctx.role != "owner":
            self._take(event.user_id or event.sender_id)
        return await handler(event, ctx)

    def _take(self, user: str) -> None:
        now = time.monotonic()
        tokens, last = self._buckets.pop(user, (self._burst, now))
        tokens = min(self._burst, tokens + (now - last) * self._rate)
        if tokens < 1.0:
            self._buckets[user] = (tokens, now)
            wait = (1.0 - tokens) / self._rate
            raise RateLimited(f"Too many messages; try again in {wait:.0f} s.", wait)
        self._buckets[user] = (tokens - 1.0, now)
        if len(self._buckets) > self._max_users:
            self._buckets.popitem(last=False)
