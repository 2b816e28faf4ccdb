"""Builds memory from the configuration (called by the composition root and the doctor)."""

from __future__ import annotations

from dataclasses import dataclass

import structlog

from nexflow.config.model import ModelProfile, NexflowConfig
from nexflow.llm.ollama import native_base
from nexflow.memory.embedder import Embedder, LiteLLMEmbedder, OpenAICompatEmbedder
from nexflow.memory.local_embedder import (
    DEFAULT_MODEL,
    LocalEmbedder,
    canonical_name,
    local_model_problem,
)
from nexflow.memory.service import MemoryService

log = structlog.get_logger("nexflow.memory")


@dataclass(frozen=True, slots=True)
class EmbedderChoice:
    """The embedding profile or local model memory will use, or why search is keyword-only."""

    profile_name: str | None
    profile: ModelProfile | None
    model: str | None
    reason: str | None  # set when there is no embedder
    local: bool = False  # the model runs in process (nexflow.memory.local_embedder)
    # Set for an ollama/<model> profile: the server whose /api/embed makes the vectors.
    ollama_base: str | None = None

    @property
    def source(self) -> str:
        if self.local:
            return f"the local model {self.model}"
        if self.ollama_base is not None:
            return f"profile {self.profile_name} (Ollama's native API at {self.ollama_base})"
        return f"profile {self.profile_name}"


def choose_embedder(config: NexflowConfig) -> EmbedderChoice:
    """Decide without importing anything heavy (the doctor and start-up call this).

    ``auto`` (the default): the embedding profile when one is named, else the local model
    when its extra is installed, else keyword-only.
    """
    memory = config.memory
    mode = memory.embedder
    if mode == "none":
        return EmbedderChoice(None, None, None, "no embedder is configured (memory.embedder: none)")
    name = memory.profile or config.llm.routes.get("embedding")
    if mode == "auto":
        if name is None:
            return _local(memory.model, auto=True)
        mode = "provider"
    if mode == "local":
        return _local(memory.model, auto=False)
    if name is None:
        return EmbedderChoice(
            None,
            None,
            None,
            "memory.embedder is provider but no profile is named "
            "(set memory.profile or llm.routes.embedding)",
        )
    profile = config.llm.models.get(name)
    if profile is None:
        return EmbedderChoice(name, None, None, f"embedding profile {name!r} is not in llm.models")
    from nexflow.llm.resolver import client_kind  # the chat clients' rule, for one answer

    ollama_base = None
    if client_kind(profile) == "ollama":  # ollama/<model>, or client: ollama
        ollama_base = native_base(profile.api_base or config.llm.ollama.base_url)
    return EmbedderChoice(name, profile, memory.model or profile.model, None, False, ollama_base)


def _local(model: str | None, *, auto: bool) -> EmbedderChoice:
    model = canonical_name(model or DEFAULT_MODEL)
    problem = local_model_problem(model)
    if problem is None:
        return EmbedderChoice(None, None, model, None, local=True)
    if auto:
        problem = f"no embedding profile is configured and {problem}"
    return EmbedderChoice(None, None, model, problem, local=True)


def make_embedder(choice: EmbedderChoice, dimensions: int | None) -> Embedder | None:
    if choice.reason is not None or choice.model is None:
        return None
    if choice.local:
        if dimensions:
            log.warning("memory_dimensions_ignored", model=choice.model, reason="local model")
        return LocalEmbedder(choice.model)
    if choice.profile is None:
        return None
    profile = choice.profile
    if choice.ollama_base is not None:
        from nexflow.memory.ollama_embedder import OllamaEmbedder

        return OllamaEmbedder(
            choice.model,
            choice.ollama_base,
            dimensions=dimensions,
            timeout_s=profile.timeout_s,
            options=profile.options,
        )
    key = profile.api_key.get_secret_value() if profile.api_key else None
    if profile.api_base and profile.client != "litellm":
        return OpenAICompatEmbedder(
            profile.api_base, choice.model, key, dimensions, profile.timeout_s
        )
    return LiteLLMEmbedder(choice.model, key, dimensions)


def build_memory(config: NexflowConfig) -> MemoryService | None:
    if not config.memory.enabled:
        return None
    choice = choose_embedder(config)
    # A Postgres storage.url puts the index there too, so replicas share it.
    url = getattr(config.storage, "url", None)
    return MemoryService(
        config.memory_path,
        config.workspace_dir,
        make_embedder(choice, config.memory.dimensions),
        no_embedder_reason=choice.reason or "",
        index_url=url if isinstance(url, str) else None,
    )
