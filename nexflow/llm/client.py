"""The model-call contract the orchestrator depends on."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

DeltaSink = Callable[[str], Awaitable[None]]


@dataclass(frozen=True, slots=True)
class ToolCall:
    id: str
    name: str
    arguments: str

    def to_openai(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "type": "function",
            "function": {"name": self.name, "arguments": self.arguments},
        }


@dataclass(frozen=True, slots=True)
class Usage:
    prompt_tokens: int = 0
    completion_tokens: int = 0
    cost_usd: float = 0.0


@dataclass(frozen=True, slots=True)
class LLMRequest:
    """``messages`` and ``tools`` are in the OpenAI chat wire format."""

    messages: Sequence[dict[str, Any]]
    tools: Sequence[dict[str, Any]] = ()
    route: str = "execute"


@dataclass(frozen=True, slots=True)
class LLMResponse:
    content: str
    model: str
    tool_calls: tuple[ToolCall, ...] = ()
    usage: Usage = field(default_factory=Usage)
    latency_s: float = 0.0
    fallback_from: str | None = None  # the model that failed before this one answered
    cached: bool = False  # answered from the response cache: no provider call, no cost


class LLMClient(Protocol):
    """Complete one chat turn. ``on_delta`` receives streamed text as it arrives."""

    async def complete(
        self, request: LLMRequest, on_delta: DeltaSink | None = None
    ) -> LLMResponse: ...
