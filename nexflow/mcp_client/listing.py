"""What Nexflow keeps of a server's tools, and how a tool's result becomes text.

:class:`McpToolInfo` is validated once from the SDK's ``Tool`` (:func:`tool_info`); the
rest of Nexflow never sees an SDK object. The annotations keep ``None`` for a missing
hint: :func:`nexflow.trust.effects.mcp_effects` decides what a missing hint means (the
worst case), and :attr:`McpToolInfo.destructive` follows the MCP spec's default
(``destructiveHint`` is true unless said otherwise, and only matters for a tool that is
not read-only).
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # the SDK's types are needed only where its objects exist
    import mcp_types as types

SEPARATOR = "__"
MAX_NAME = 64  # function names most providers accept
_UNSAFE = re.compile(r"[^A-Za-z0-9_-]")


@dataclass(frozen=True, slots=True)
class McpToolInfo:
    """One tool a server lists: its real name, the name the model uses, its schema, hints."""

    server: str
    name: str
    description: str
    input_schema: Mapping[str, Any] = field(default_factory=dict)
    read_only: bool | None = None
    destructive_hint: bool | None = None
    open_world: bool | None = None

    @property
    def model_name(self) -> str:
        return model_name(self.server, self.name)

    @property
    def destructive(self) -> bool:
        """Whether the user must confirm a call (the spec's defaults: missing = yes)."""
        return self.read_only is not True and self.destructive_hint is not False

    def summary(self) -> dict[str, Any]:
        """The tool as ``mcp_tools`` shows it to the model."""
        hints = []
        if self.read_only is True:
            hints.append("read-only")
        elif self.destructive:
            hints.append("destructive: the user confirms each call")
        if self.open_world is not False:
            hints.append("open world")
        return {
            "name": self.model_name,
            "description": self.description,
            "input_schema": dict(self.input_schema),
            **({"notes": ", ".join(hints)} if hints else {}),
        }


def model_name(server: str, tool: str) -> str:
    """``<server>__<tool>``, with characters providers refuse replaced by ``_``."""
    name = f"{server}{SEPARATOR}{_UNSAFE.sub('_', tool)}"
    return name[:MAX_NAME]


def split_name(name: str) -> tuple[str, str] | None:
    """``("files", "read_file")`` for ``files__read_file``; None for a name without ``__``."""
    server, sep, tool = name.partition(SEPARATOR)
    return (server, tool) if sep and server and tool else None


def tool_info(server: str, tool: types.Tool) -> McpToolInfo:
    hints = tool.annotations
    schema = tool.input_schema if isinstance(tool.input_schema, dict) else {}
    return McpToolInfo(
        server=server,
        name=tool.name,
        description=" ".join((tool.description or tool.title or "").split())[:1000],
        input_schema=schema or {"type": "object", "properties": {}},
        read_only=hints.read_only_hint if hints is not None else None,
        destructive_hint=hints.destructive_hint if hints is not None else None,
        open_world=hints.open_world_hint if hints is not None else None,
    )


def render(result: types.CallToolResult) -> str:
    """A tool result as text for the model: text blocks as they are, others described."""
    import mcp_types as types  # loaded already: the result came from the SDK

    parts: list[str] = []
    for block in result.content:
        if isinstance(block, types.TextContent):
            parts.append(block.text)
        elif isinstance(block, types.ImageContent | types.AudioContent):
            size = len(block.data) * 3 // 4
            parts.append(f"[{block.type} {block.mime_type}, about {size} bytes, not shown]")
        elif isinstance(block, types.ResourceLink):
            parts.append(f"[resource link {block.uri}]")
        elif isinstance(block, types.EmbeddedResource):
            res = block.resource
            if isinstance(res, types.TextResourceContents):
                parts.append(res.text)
            else:
                parts.append(f"[binary resource {res.uri} ({res.mime_type or 'unknown type'})]")
    if not parts and result.structured_content is not None:
        parts.append(json.dumps(result.structured_content, ensure_ascii=False, default=str))
    return "\n".join(parts) or "(the tool returned nothing)"
