"""The response cache: identical requests answered from memory within a TTL.

Opt-in per route (``llm.cache.routes``). The key is a SHA-256 of the profile that would
answer (name, model, api_base, temperature, max_tokens, options), the messages and the
tools, so any difference in any of them is a miss. Entries live in this process's
memory, least recently used first out past ``max_entries``; a restart empties it.

Never cached: a streaming call (someone is watching tokens arrive: it goes to the
provider), a reply with tool calls (the model decided to act: acting again must be
decided again, on the state of the world at that time), a reply from a fallback model
(a degraded answer must not outlive the outage), an empty reply, and errors.
A hit is returned with ``cached=True`` and zero usage: the orchestrator records it as
outcome ``cache_hit``, which budgets and cost do not count.
"""

from __future__ import annotations

import hashlib
import json
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import replace

from nexflow.config.model import ResponseCacheConfig
from nexflow.llm.client import LLMRequest, LLMResponse, Usage


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

    @staticmethod
    def key(identity: str, request: LLMRequest) -> str:
        payload = json.dumps(
            [identity, list(request.messages), list(request.tools)],
            sort_keys=True,
            separators=(",", ":"),
            ensure_ascii=False,
            default=str,
        )
        return hashlib.sha256(payload.encode()).hexdigest()

    def get(self, key: str) -> LLMResponse | None:
        entry = self._entries.get(key)
        if entry is None or self._clock() - entry[0] >= self._config.ttl_s:
            if entry is not None:
                del self._entries[key]
            self.misses += 1
            return None
        self._entries.move_to_end(key)
        self.hits += 1
        return replace(entry[1], cached=True, usage=Usage(), latency_s=0.0)

    def put(self, key: str, response: LLMResponse) -> bool:
        """Store ``response`` if it may be replayed; True when stored."""
        if response.tool_calls or response.fallback_from or not response.content:
            return False
        self._entries[key] = (self._clock(), response)
        self._entries.move_to_end(key)
        while len(self._entries) > self._config.max_entries:
            self._entries.popitem(last=False)
        return True
