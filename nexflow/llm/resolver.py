"""Which model answers: the configured one, else a local Ollama, else a clear explanation."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

import httpx

from nexflow.config.model import LLMConfig, ModelProfile
from nexflow.llm.client import LLMClient
from nexflow.llm.errors import NoModelConfigured
from nexflow.llm.litellm_client import LiteLLMClient, LiteLLMLoader, ModelTarget
from nexflow.llm.openai_compat import OpenAICompatClient
from nexflow.llm.prices import PriceMap
from nexflow.llm.retry import OnRetry, RetryingClient
from nexflow.llm.router import CircuitBreaker, FallbackClient, Link, OnFallback

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
    the shared :class:`CircuitBreaker`).
    """

    def __init__(
        self,
        config: LLMConfig,
        loader: LiteLLMLoader,
        *,
        on_retry: OnRetry | None = None,
        on_fallback: OnFallback | None = None,
        probe_ttl_s: float = 30.0,
    ) -> None:
        self._config = config
        self._loader = loader
        self._on_retry = on_retry
        self._on_fallback = on_fallback
        self.breaker = CircuitBreaker(config.breaker)
        self._routed: dict[str, LLMClient] = {}
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
            return self._routed_client(name)
        ollama_model = await self.probe_ollama()
        if ollama_model is None:
            raise NoModelConfigured(NO_MODEL_HELP.format(ollama=self._config.ollama.base_url))
        # Ollama speaks the OpenAI wire format under /v1.
        base = self._config.ollama.base_url.rstrip("/") + "/v1"
        target = ModelTarget(f"ollama/{ollama_model}", api_base=base, api_key="ollama")
        return self._cached(f"ollama:{ollama_model}", target, native=True)

    def _routed_client(self, name: str) -> LLMClient:
        client = self._routed.get(name)
        if client is None:
            chain = []
            for link in (name, *self._config.fallbacks.get(name, ())):
                profile = self._config.models[link]
                inner = self._cached(link, _target(profile), self._is_native(profile))
                chain.append(Link(link, profile.model, inner))
            client = FallbackClient(chain, self.breaker, self._on_fallback)
            self._routed[name] = client
        return client

    def routed_models(self) -> dict[str, str]:
        """Route → model string, for ``/status`` (empty when nothing is configured)."""
        return {
            route: self._config.models[name].model
            for route in ("plan", "execute", "summarize", "heartbeat", "embedding")
            if (name := self._profile_name(route)) is not None
        }

    def _cached(self, key: str, target: ModelTarget, native: bool) -> LLMClient:
        client = self._clients.get(key)
        if client is None:
            inner: LLMClient
            if native:
                compat = OpenAICompatClient(target, self._prices, stream=self._config.stream)
                self._closers.append(compat.aclose)
                inner = compat
            else:
                inner = LiteLLMClient(target, self._loader, stream=self._config.stream)
            client = RetryingClient(inner, self._config.retry, on_retry=self._on_retry)
            self._clients[key] = client
        return client

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
        if any(not self._is_native(p) for p in self._config.models.values()):
            self._loader.warm()

    @staticmethod
    def _is_native(profile: ModelProfile) -> bool:
        return profile.client == "openai" or (
            profile.client == "auto"
            and profile.model.startswith("openai/")
            and bool(profile.api_base)
        )

    async def close(self) -> None:
        await self._loader.close()
        for close in self._closers:
            await close()
        self._closers.clear()
        self._clients.clear()
        self._routed.clear()

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


def _target(profile: ModelProfile) -> ModelTarget:
    return ModelTarget(
        model=profile.model,
        api_base=profile.api_base,
        api_key=profile.api_key.get_secret_value() if profile.api_key else None,
        timeout_s=profile.timeout_s,
        max_tokens=profile.max_tokens,
        temperature=profile.temperature,
    )


async def _ask_ollama(base_url: str, preferred: str | None) -> str | None:
    try:
        async with httpx.AsyncClient(timeout=0.5) as http:
            resp = await http.get(f"{base_url.rstrip('/')}/api/tags")
            resp.raise_for_status()
            names = [str(m.get("name")) for m in resp.json().get("models", []) if m.get("name")]
    except (httpx.HTTPError, ValueError):
        return None
    # Ollama answered: use the configured model (Ollama pulls or reports it), else its first.
    return preferred or (names[0] if names else None)
