"""The response cache: identical requests answered from a store within a TTL.

Opt-in per route (``llm.cache.routes``). The key is a SHA-256 of the profile that would
answer (name, model, api_base, temperature, max_tokens, options), the messages and the
tools, so any difference in any of them is a miss.

Where entries live is a :class:`CacheBackend` (async ``get`` / ``put``), chosen at the
composition root: one gateway on SQLite keeps them in this process's memory
(:class:`MemoryResponseCache` over the :class:`ResponseCache` LRU, least recently used
first out past ``max_entries``; a restart empties it). Replicas on Postgres share one
(:mod:`nexflow.scale.response_cache`: Redis when ``redis.url`` is set, else a Postgres
table), so a reply cached by one replica is a hit on every other. A shared backend
stores :func:`encode`'s JSON and treats its own failures as misses: the provider answers.

Never cached: a streaming call (someone is watching tokens arrive: it goes to the
provider), a reply with tool calls (the model decided to act: acting again must be
decided again, on the state of the world at that time), a reply from a fallback model
(a degraded answer must not outlive the outage), an empty reply, and errors
(:func:`cacheable`; the streaming rule is the caller's, ``RouteClient``).
A hit is returned with ``cached=True`` and zero usage (:func:`as_hit`): the orchestrator
records it as outcome ``cache_hit``, which budgets and cost do not count.
"""

from __future__ import annotations

import hashlib
import json
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import replace
from typing import Protocol

from pydantic import TypeAdapter

from nexflow.config.model import ResponseCacheConfig
from nexflow.llm.client import LLMRequest, LLMResponse, Usage

_WIRE: TypeAdapter[LLMResponse] = TypeAdapter(LLMResponse)


class CacheBackend(Protocol):
    """Where cached replies live: this process, a Postgres table or Redis.

    ``get`` returns a hit already marked (:func:`as_hit`) or None; ``put`` stores only
    what :func:`cacheable` admits and says whether it did. Neither raises for the
    backend's own failures: a shared store that is down is a miss and a skipped put.
    """

    async def get(self, key: str) -> LLMResponse | None: ...

    async def put(self, key: str, response: LLMResponse) -> bool: ...


def cache_key(identity: str, request: LLMRequest) -> str:
    """SHA-256 over the answering profile's identity, the messages and the tools."""
    payload = json.dumps(
        [identity, list(request.messages), list(request.tools)],
        sort_keys=True,
        separators=(",", ":"),
        ensure_ascii=False,
        default=str,
    )
    return hashlib.sha256(payload.encode()).hexdigest()


def cacheable(response: LLMResponse) -> bool:
    """May ``response`` be replayed? Not with tool calls, from a fallback, or empty."""
    return not (response.tool_calls or response.fallback_from or not response.content)


def as_hit(response: LLMResponse) -> LLMResponse:
    return replace(response, cached=True, usage=Usage(), latency_s=0.0)


def encode(response: LLMResponse) -> bytes:
    """Every field of the response as JSON (tool calls and usage included)."""
    return _WIRE.dump_json(response)


def decode(data: str | bytes) -> LLMResponse:
    """The response :func:`encode` wrote; ``ValueError`` when it is not one."""
    return _WIRE.validate_json(data)


class ResponseCache:
    """An LRU map of request key → response, each entry valid for ``ttl_s`` seconds."""

    def __init__(
        self, config: ResponseCacheConfig, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self._config = config
        self._clock = clock
        self._entries: OrderedDict[str, tuple[float, LLMResponse]] = OrderedDict()
        self.hits = 0
        self.misses = 0

    def enabled_for(self, route: str) -> bool:
        return route in self._config.routes

    def __len__(self) -> int:
        return len(self._entries)

    key = staticmethod(cache_key)

    def get(self, key: str) -> LLMResponse | None:
        entry = self._entries.get(key)
        if entry is None or self._clock() - entry[0] >= self._config.ttl_s:
            if entry is not None:
                del self._entries[key]
            self.misses += 1
            return None
        self._entries.move_to_end(key)
        self.hits += 1
        return as_hit(entry[1])

    def put(self, key: str, response: LLMResponse) -> bool:
        """Store ``response`` if it may be replayed; True when stored."""
        if not cacheable(response):
            return False
        self._entries[key] = (self._clock(), response)
        self._entries.move_to_end(key)
        while len(self._entries) > self._config.max_entries:
            self._entries.popitem(last=False)
        return True


class MemoryResponseCache:
    """The :class:`CacheBackend` of one gateway: :class:`ResponseCache` in this process."""

    backend = "memory"

    def __init__(
        self, config: ResponseCacheConfig, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.lru = ResponseCache(config, clock)

    async def get(self, key: str) -> LLMResponse | None:
        return self.lru.get(key)

    async def put(self, key: str, response: LLMResponse) -> bool:
        return self.lru.put(key, response)

    @property
    def hits(self) -> int:
        return self.lru.hits

    @property
    def misses(self) -> int:
        return self.lru.misses

    def __len__(self) -> int:
        return len(self.lru)
