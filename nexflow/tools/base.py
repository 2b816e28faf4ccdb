"""Contracts shared by every tool provider.

A provider (built-in tools, the skill runner, panel tools) implements :class:`Tool`.
The orchestrator never knows which provider a tool comes from: it reads
:attr:`Tool.spec` to describe the tool to the model and awaits :meth:`Tool.run`.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol, runtime_checkable


class ToolError(Exception):
    """A tool failed; ``message`` is safe to show to the model and the user."""

    def __init__(self, message: str, *, retryable: bool = False) -> None:
        super().__init__(message)
        self.message = message
        self.retryable = retryable


class UnknownTool(ToolError):
    """The model named a tool that is not registered."""


@dataclass(frozen=True, slots=True)
class ToolSpec:
    """What the model sees of a tool: a name, a description and a JSON Schema for arguments."""

    name: str
    description: str
    parameters: Mapping[str, Any] = field(
        default_factory=lambda: {"type": "object", "properties": {}}
    )
    dangerous: bool = False

    def to_openai(self) -> dict[str, Any]:
        return {
            "type": "function",
            "function": {
                "name": self.name,
                "description": self.description,
                "parameters": dict(self.parameters),
            },
        }


ConfirmFn = Callable[[str, str], Awaitable[bool]]
"""``confirm(title, detail) -> approved``: asks the *user* (never the model) to approve."""


@dataclass(frozen=True, slots=True)
class ToolContext:
    """Who is calling and where; passed to every tool run."""

    user_id: str
    session_id: str
    channel: str
    chat_id: str
    permissions: frozenset[str] = frozenset()
    confirm: ConfirmFn | None = None


@dataclass(frozen=True, slots=True)
class ToolResult:
    """The outcome of a tool call. ``content`` goes back to the model as the tool message."""

    content: str
    is_error: bool = False
    data: Mapping[str, Any] | None = None


@runtime_checkable
class Tool(Protocol):
    """A callable capability. Implementations must not block the event loop."""

    @property
    def spec(self) -> ToolSpec: ...

    async def run(self, args: Mapping[str, Any], ctx: ToolContext) -> ToolResult: ...
