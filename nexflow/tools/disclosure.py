"""Progressive disclosure of tools: schemas only for the tools a turn uses.

Every tool schema offered to the model is paid for in prompt tokens on every model call
of every turn, and a bare "hi" uses none of them. So a tool whose spec says
``deferred=True`` (reminders, panels, patches, MCP servers' tools…) is offered by *name*
only, in the description of one meta-tool, ``load_tools``; when the model calls
``load_tools(names=[…])`` the turn's next model call carries those schemas too
(:class:`Disclosure`, kept in the turn's checkpoint so a parked turn resumes with them).

A deferred tool can still be called by its name without loading it first: it is in the
caller's :class:`~nexflow.tools.toolset.Toolset`, so the call is looked up, checked and
run like any other; loading only shows the model the arguments.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Collection, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from nexflow.tools.base import ToolSpec

LOAD_TOOLS = "load_tools"
_ASIDE = re.compile(r"\s*\([^()]*\)")
_SENTENCE_END = re.compile(r"(?<!\be\.g)(?<!\bi\.e)[.;:]\s")
_SUMMARY = 40  # characters of a deferred tool's description shown next to its name
_LISTING_BUDGET = 900  # characters of the listing; past it, names only


@functools.lru_cache(maxsize=4096)
def summary(description: str, limit: int = _SUMMARY) -> str:
    """The first sentence of ``description`` without asides, cut at a word boundary.

    Cached: a turn's listing summarises the same few dozen descriptions every model call."""
    text = _ASIDE.sub("", " ".join(description.split()))
    text = _SENTENCE_END.split(text, maxsplit=1)[0].rstrip(".;:, ")
    if len(text) <= limit:
        return text
    # No ellipsis: JSON bodies often escape it to six characters, and the model knows.
    return text[:limit].rsplit(" ", 1)[0].rstrip(".;:,- ")


def load_tools_spec(deferred: Iterable[ToolSpec]) -> ToolSpec:
    """The meta-tool whose description names the tools that can be loaded."""
    entries = [(s.name, summary(s.description)) for s in deferred]
    lines: list[str] = []
    used = 0
    for name, text in entries:
        line = f"{name} ({text})" if text else name
        if used + len(line) > _LISTING_BUDGET:
            line = name
        lines.append(line)
        used += len(line) + 2
    return ToolSpec(
        name=LOAD_TOOLS,
        description="Load tools by name before using them: " + "; ".join(lines) + ".",
        parameters={
            "type": "object",
            "properties": {"names": {"type": "array", "items": {"type": "string"}}},
            "required": ["names"],
        },
    )


@dataclass(slots=True)
class Disclosure:
    """Which deferred tools this turn has loaded."""

    loaded: list[str] = field(default_factory=list)

    def specs(self, tools: Iterable[ToolSpec], hidden: Collection[str] = ()) -> list[ToolSpec]:
        """What the model is offered: every tool not deferred, the loaded ones, and
        ``load_tools`` while something is left to load."""
        offered: list[ToolSpec] = []
        waiting: list[ToolSpec] = []
        for spec in tools:
            if spec.name in hidden:
                continue
            if spec.deferred and spec.name not in self.loaded:
                waiting.append(spec)
            else:
                offered.append(spec)
        if waiting:
            offered.append(load_tools_spec(waiting))
        return offered

    def show(self, names: Iterable[str]) -> None:
        """Offer these tools with their schemas from the next model call on."""
        for name in names:
            if name not in self.loaded:
                self.loaded.append(name)

    def load(self, args: Mapping[str, Any], tools: Iterable[ToolSpec]) -> str:
        """Run ``load_tools``: mark the named tools loaded; the answer for the model."""
        names = args.get("names")
        if isinstance(names, str):
            names = [names]
        if not isinstance(names, list) or not names:
            return "error: give names, a list of tool names from load_tools' description"
        known = {s.name: s for s in tools}
        found = [n for n in map(str, names) if n in known]
        missing = [n for n in map(str, names) if n not in known]
        self.show(found)
        parts = []
        if found:
            parts.append(f"Loaded {', '.join(found)}; call them now.")
        if missing:
            parts.append(f"No tool named {', '.join(missing)}.")
        return " ".join(parts)
