"""Builds memory from the configuration (called by the composition root and the doctor)."""

from __future__ import annotations

from dataclasses import dataclass

from nexflow.config.model import ModelProfile, NexflowConfig
from nexflow.memory.embedder import Embedder, LiteLLMEmbedder, OpenAICompatEmbedder
from nexflow.memory.service import MemoryService


@dataclass(frozen=True, slots=True)
class EmbedderChoice:
    """The embedding profile memory will use, or why search is keyword-only."""

    profile_name: str | None
    profile: ModelProfile | None
    model: str | None
    reason: str | None  # set when there is no embedder


def choose_embedder(config: NexflowConfig) -> EmbedderChoice:
    memory = config.memory
    if memory.embedder == "none":
        return EmbedderChoice(None, None, None, "no embedder is configured (memory.embedder: none)")
    name = memory.profile or config.llm.routes.get("embedding")
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
    return EmbedderChoice(name, profile, memory.model or profile.model, None)


def make_embedder(choice: EmbedderChoice, dimensions: int | None) -> Embedder | None:
    if choice.profile is None or choice.model is None:
        return None
    profile = choice.profile
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
    return MemoryService(
        config.memory_path,
        config.workspace_dir,
        make_embedder(choice, config.memory.dimensions),
        no_embedder_reason=choice.reason or "",
    )
