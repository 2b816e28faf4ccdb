"""Per-route policy on top of the profile clients: routing by prompt size, the cache.

``llm.size_routes`` rules are tried in list order; the first whose route filter admits
the call and whose threshold the prompt's estimated size passes (``above_tokens``:
strictly more; ``below_tokens``: strictly fewer) picks the profile, else the route's own
profile answers. The chosen profile keeps its fallback chain and breaker. The size is an
estimate without a tokenizer (:func:`estimate_tokens`): about four characters a token
for English and code, fewer for Russian, so leave headroom below a model's window.

The cache (:mod:`nexflow.llm.cache`) is asked before the provider and told its answer
after, never for a streaming call; its backend (memory, Postgres, Redis) never raises,
so a shared cache that is down costs a turn nothing but the miss.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from nexflow.config.model import SizeRoute
from nexflow.llm.cache import CacheBackend, cache_key
from nexflow.llm.client import DeltaSink, LLMClient, LLMRequest, LLMResponse

CHARS_PER_TOKEN = 4
MESSAGE_OVERHEAD_TOKENS = 4  # role and separators of the chat template


def estimate_tokens(
    messages: Sequence[dict[str, Any]], tools: Sequence[dict[str, Any]] = ()
) -> int:
    """Characters / 4 over message text, tool-call arguments and tool schemas."""
    chars = 0
    for message in messages:
        content = message.get("content")
        if isinstance(content, str):
            chars += len(content)
        elif isinstance(content, list):
            chars += sum(len(str(p.get("text") or "")) for p in content if isinstance(p, dict))
        for call in message.get("tool_calls") or ():
            function = call.get("function") or {}
            chars += len(str(function.get("name") or "")) + len(str(function.get("arguments")))
    if tools:
        chars += len(json.dumps(list(tools), separators=(",", ":")))
    return chars // CHARS_PER_TOKEN + MESSAGE_OVERHEAD_TOKENS * len(messages)


@dataclass(frozen=True, slots=True)
class Choice:
    """A profile a route may use: its name, the cache identity and its (fallback) client."""

    profile: str
    identity: str
    client: LLMClient


def matches(rule: SizeRoute, route: str, tokens: int) -> bool:
    if rule.routes and route not in rule.routes:
        return False
    if rule.above_tokens is not None:
        return tokens > rule.above_tokens
    return rule.below_tokens is not None and tokens < rule.below_tokens


class RouteClient:
    """The client for one route when it has size rules or the cache; else it is not used."""

    def __init__(
        self,
        route: str,
        default: Choice,
        by_size: Sequence[tuple[SizeRoute, Choice]] = (),
        cache: CacheBackend | None = None,
    ) -> None:
        self.route = route
        self._default = default
        self._by_size = tuple(by_size)
        self._cache = cache

    @property
    def model(self) -> str:
        return str(getattr(self._default.client, "model", self._default.profile))

    def choose(self, request: LLMRequest) -> Choice:
        if self._by_size:
            tokens = estimate_tokens(request.messages, request.tools)
            for rule, choice in self._by_size:
                if matches(rule, self.route, tokens):
                    return choice
        return self._default

    async def complete(self, request: LLMRequest, on_delta: DeltaSink | None = None) -> LLMResponse:
        choice = self.choose(request)
        if self._cache is None or on_delta is not None:
            return await choice.client.complete(request, on_delta)
        key = cache_key(choice.identity, request)
        if (hit := await self._cache.get(key)) is not None:
            return hit
        response = await choice.client.complete(request, None)
        await self._cache.put(key, response)
        return response
