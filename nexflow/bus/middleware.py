"""The publish chain: an onion of middlewares with one signature.

``async def mw(handler, event, ctx) -> Accepted`` — call ``handler(event, ctx)`` to
go on, or raise :class:`~nexflow.bus.errors.Rejected` to stop.
"""

from __future__ import annotations

import re
import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Protocol

import structlog

from nexflow import i18n
from nexflow.bus.errors import NotAllowed, RateLimited, Rejected
from nexflow.bus.events import InboundEvent
from nexflow.config.model import RateLimitConfig, SecurityConfig
from nexflow.observability.metrics import Metrics
from nexflow.scale.errors import ScaleUnavailable

if TYPE_CHECKING:
    from nexflow.scale.limits import RateLimiter

log = structlog.get_logger("nexflow.identity")


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
    lang: str = i18n.DEFAULT


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


class PairingCode(Protocol):
    @property
    def code(self) -> str: ...


class UserDirectory(Protocol):
    async def find_user(self, channel: str, external_id: str) -> tuple[str, str] | None: ...
    async def create_user(self, name: str, role: str, channel: str, external_id: str) -> str: ...
    async def user_lang(self, user_id: str) -> str | None: ...
    async def pairing_request(
        self, channel: str, sender_id: str, chat_id: str, name: str, lang: str | None, ttl_s: float
    ) -> tuple[PairingCode, bool]: ...
    async def redeem_link_code(self, code: str, channel: str, external_id: str) -> str | None: ...


class PairingPending(NotAllowed):
    """An unknown sender on a ``pairing`` channel. The first refusal carries the code; later
    ones, while the code is live, have an empty ``user_message`` (nothing is sent)."""

    reason = "pairing"

    def __init__(self, user_message: str, code: str) -> None:
        super().__init__(user_message)
        self.code = code


TRUSTED_OWNER = "owner"  # the owner's sender id on a trusted channel (nexflow.web.identity)
_LINK = re.compile(r"^/link(?:@\S+)?\s+([A-Za-z0-9]{4,16})\s*$", re.I)


class Identity:
    """Resolves the unified user id and language and applies the channel's access policy.

    On ``trusted_channels`` (the authenticated web API) the sender ``"owner"`` is the owner
    and any other sender (``"user:<name>"``, a web user its token authenticated) is found
    or created with the role ``user``: no policy applies there. On a ``pairing`` channel
    an unknown sender is told a pairing code once and refused until the owner approves it.
    ``/link <code>`` is handled here, before the policy: it attaches the sender to the
    user who asked for the code (an unknown sender too).
    Sets ``ctx.lang`` and ``event.metadata["lang"]``.
    """

    def __init__(
        self,
        users: UserDirectory,
        security: SecurityConfig,
        trusted_channels: frozenset[str] = frozenset({"web"}),
        cache_size: int = 10_000,
        pairing_ttl_s: float = 3600.0,
        link_attempts: int = 5,
    ) -> None:
        self._users = users
        self._security = security
        self._trusted = trusted_channels
        self._cache: OrderedDict[tuple[str, str], tuple[str, str, str]] = OrderedDict()
        self._cache_size = cache_size
        self._pairing_ttl_s = pairing_ttl_s
        self._link_attempts = link_attempts
        self._link_failures: OrderedDict[tuple[str, str], tuple[int, float]] = OrderedDict()

    def forget(self, user_id: str | None = None) -> None:
        """Drop cached resolutions (of one user, or all): after a link or a ``/lang``."""
        for key, value in list(self._cache.items()):
            if user_id is None or value[0] == user_id:
                del self._cache[key]

    async def __call__(
        self, handler: Handler, event: InboundEvent, ctx: PublishContext
    ) -> Accepted:
        key = (event.channel, event.sender_id)
        link = _LINK.match(event.message.strip())
        if link is not None and self._policy(event.channel) != "disabled":
            return await self._link(event, link.group(1))
        found = self._cache.get(key)
        if found is None:
            found = await self._resolve(event)
            self._cache[key] = found
            if len(self._cache) > self._cache_size:
                self._cache.popitem(last=False)
        user_id, ctx.role, ctx.lang = found
        structlog.contextvars.bind_contextvars(user_id=user_id)
        metadata = {**event.metadata, "lang": ctx.lang}
        return await handler(replace(event, user_id=user_id, role=ctx.role, metadata=metadata), ctx)

    def _policy(self, channel: str) -> str:
        access = self._security.channels.get(channel)
        return access.policy if access else "pairing"

    async def _resolve(self, event: InboundEvent) -> tuple[str, str, str]:
        channel, sender = event.channel, event.sender_id
        platform_lang = event.metadata.get("language")
        trusted = channel in self._trusted
        is_owner = (trusted and sender == TRUSTED_OWNER) or (
            sender in self._security.owner.get(channel, ())
        )
        known = await self._users.find_user(channel, sender)
        if known is not None:
            return (*known, i18n.pick(await self._users.user_lang(known[0]), platform_lang))
        lang = i18n.pick(None, platform_lang)
        if trusted and not is_owner:
            name = sender.removeprefix("user:")
            return await self._users.create_user(name, "user", channel, sender), "user", lang
        access = self._security.channels.get(channel)
        policy = self._policy(channel)
        # A connector's own allow list (e.g. connectors.telegram.allowed_users) approves too.
        allowed = (access is not None and sender in access.allow) or (
            event.metadata.get("allowlisted") is True
        )
        if is_owner:
            return await self._users.create_user("owner", "owner", channel, sender), "owner", lang
        if policy == "open" or allowed:
            return await self._users.create_user(sender, "user", channel, sender), "user", lang
        if policy == "disabled":
            raise NotAllowed(i18n.t(lang, "channel_disabled"))
        if policy == "pairing":
            await self._pair(event, lang)
        raise NotAllowed(i18n.t(lang, "not_allowed", channel=channel, sender=sender))

    async def _pair(self, event: InboundEvent, lang: str) -> None:
        meta = event.metadata
        name = str(meta.get("username") or meta.get("display_name") or meta.get("first_name") or "")
        request, created = await self._users.pairing_request(
            event.channel,
            event.sender_id,
            event.chat_id,
            name or event.sender_id,
            lang,
            self._pairing_ttl_s,
        )
        if not created:
            raise PairingPending("", request.code)
        log.info("pairing_requested", sender_id=event.sender_id, code=request.code)
        minutes = round(self._pairing_ttl_s / 60)
        raise PairingPending(
            i18n.t(lang, "pairing", code=request.code, minutes=minutes), request.code
        )

    async def _link(self, event: InboundEvent, code: str) -> Accepted:
        key = (event.channel, event.sender_id)
        platform_lang = event.metadata.get("language")
        cached = self._cache.get(key)
        lang = cached[2] if cached else i18n.pick(None, platform_lang)
        if event.channel in self._trusted:
            text = i18n.t(lang, "link_here")
        elif self._too_many_failures(key):
            text = i18n.t(lang, "link_bad")
        else:
            user_id = await self._users.redeem_link_code(code, event.channel, event.sender_id)
            if user_id is None:
                self._failed(key)
                text = i18n.t(lang, "link_bad")
            else:
                self._cache.pop(key, None)
                self._link_failures.pop(key, None)
                lang = i18n.pick(await self._users.user_lang(user_id), platform_lang)
                log.info("identity_linked", sender_id=event.sender_id, user_id=user_id)
                text = i18n.t(lang, "link_done")
        return Accepted(0, event.session_id or "", event, immediate=text)

    def _too_many_failures(self, key: tuple[str, str]) -> bool:
        count, since = self._link_failures.get(key, (0, 0.0))
        return count >= self._link_attempts and time.monotonic() - since < 600

    def _failed(self, key: tuple[str, str]) -> None:
        count, since = self._link_failures.pop(key, (0, time.monotonic()))
        if time.monotonic() - since >= 600:
            count, since = 0, time.monotonic()
        self._link_failures[key] = (count + 1, since)
        if len(self._link_failures) > self._cache_size:
            self._link_failures.popitem(last=False)


class RateLimit:
    """A token bucket per user: ``burst`` messages at once, refilled at ``per_minute``.

    With ``shared`` (replicas on Postgres: :mod:`nexflow.scale.wiring`) the buckets live
    on Redis or Postgres, so a user gets the limit once across all replicas; when that
    backend cannot be reached, this process's own buckets stand in (logged). Without it
    the buckets are this process's, and taking a token costs no await.
    """

    def __init__(
        self, config: RateLimitConfig, max_users: int = 10_000, shared: RateLimiter | None = None
    ) -> None:
        self._rate = config.per_minute / 60.0
        self._burst = float(config.burst)
        self._buckets: OrderedDict[str, tuple[float, float]] = OrderedDict()
        self._max_users = max_users
        self._shared = shared

    async def __call__(
        self, handler: Handler, event: InboundEvent, ctx: PublishContext
    ) -> Accepted:
        if ctx.role != "owner":
            user = event.user_id or event.sender_id
            if self._shared is None:
                self._take(user, ctx.lang)
            else:
                await self._take_shared(user, ctx.lang)
        return await handler(event, ctx)

    async def _take_shared(self, user: str, lang: str) -> None:
        assert self._shared is not None
        try:
            wait = await self._shared.take(user)
        except ScaleUnavailable as exc:  # its own message says which backend and why
            log.warning("rate_limit_unshared", error=str(exc))
            self._take(user, lang)
            return
        if wait > 0.0:
            raise RateLimited(i18n.t(lang, "rate_limited", wait=f"{wait:.0f}"), wait)

    def _take(self, user: str, lang: str) -> None:
        now = time.monotonic()
        tokens, last = self._buckets.pop(user, (self._burst, now))
        tokens = min(self._burst, tokens + (now - last) * self._rate)
        if tokens < 1.0:
            self._buckets[user] = (tokens, now)
            wait = (1.0 - tokens) / self._rate
            raise RateLimited(i18n.t(lang, "rate_limited", wait=f"{wait:.0f}"), wait)
        self._buckets[user] = (tokens - 1.0, now)
        if len(self._buckets) > self._max_users:
            self._buckets.popitem(last=False)
