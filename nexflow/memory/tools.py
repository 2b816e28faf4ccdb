"""The model's memory tools: ``memory_save``, ``memory_search``, ``memory_get``.

Every call acts on the calling user's memory only (``ToolContext.user_id``).

Taint (docs/trust.md): ``memory_save`` in a turn that read untrusted content marks the
fact with the turn's sources (in the note file); ``memory_search`` and ``memory_get``
return ``ToolResult(untrusted=True)`` when any item they return carries such a mark, so
the turn that reads it back is tainted too.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from nexflow.memory.embedder import AnnouncesLoad
from nexflow.memory.errors import MemoryStoreError
from nexflow.memory.service import MemoryService
from nexflow.memory.store import Item
from nexflow.tools.base import Tool, ToolContext, ToolError, ToolResult, ToolSpec

MAX_TEXT = 4_000
SNIPPET = 240
_TAG = re.compile(r"^[\w-]{1,40}$")


class _LoadWatch:
    """Notices when a tool call made memory's embedder load its model (the first use);
    only embedders that announce a load (the local model) count."""

    def __init__(self, memory: MemoryService) -> None:
        embedder = memory.embedder
        self._embedder = embedder if isinstance(embedder, AnnouncesLoad) else None
        self._was_loaded = self._embedder is None or self._embedder.loaded

    def notice(self) -> str | None:
        if self._was_loaded or self._embedder is None or not self._embedder.loaded:
            return None
        return self._embedder.load_notice


def _describe(item: Item) -> str:
    when = datetime.fromtimestamp(item.created_at, UTC).strftime("%Y-%m-%d")
    tags = " ".join(f"#{t}" for t in item.tags)
    taint = f", untrusted: from {', '.join(item.tainted)}" if item.tainted else ""
    return f"#{item.id} [{when}, {item.path}{', ' + tags if tags else ''}{taint}]"


class MemorySave:
    spec = ToolSpec(
        name="memory_save",
        deferred=True,
        description=(
            "Save a fact to the user's long-term memory (appended to today's note, which the "
            "user can read and edit). Save durable facts, preferences and decisions, one per call."
        ),
        parameters={
            "type": "object",
            "properties": {
                "text": {"type": "string", "description": "the fact, self-contained"},
                "tags": {"type": "array", "items": {"type": "string"}, "description": "optional"},
            },
            "required": ["text"],
        },
        effects=frozenset({"write"}),
    )

    def __init__(self, memory: MemoryService) -> None:
        self._memory = memory

    async def run(self, args: Mapping[str, Any], ctx: ToolContext) -> ToolResult:
        text = str(args.get("text") or "").strip()
        if not text:
            raise ToolError("memory_save needs a non-empty text")
        if len(text) > MAX_TEXT:
            raise ToolError(f"text is too long ({len(text)} characters, at most {MAX_TEXT})")
        raw_tags = args.get("tags") or []
        if not isinstance(raw_tags, list):
            raise ToolError("tags must be a list of words")
        tags = [str(t).lstrip("#") for t in raw_tags]
        bad = [t for t in tags if not _TAG.match(t)]
        if bad:
            raise ToolError(f"tags must be single words (letters, digits, - or _): {bad}")
        watch = _LoadWatch(self._memory)
        try:
            item = await self._memory.save(
                ctx.user_id, text, tags, ctx.tainted, key=ctx.idempotency_key
            )
        except MemoryStoreError as exc:
            raise ToolError(exc.message) from exc
        sources = ", ".join(item.tainted)
        marked = f" It is marked untrusted (from {sources})." if sources else ""
        loaded = watch.notice()
        return ToolResult(
            content=f"Saved memory #{item.id} in {item.path}.{marked}"
            + (f" ({loaded})" if loaded else ""),
            data={
                "id": item.id,
                "path": item.path,
                "tainted": list(item.tainted),
                "notice": loaded,
            },
        )


class MemorySearch:
    spec = ToolSpec(
        name="memory_search",
        description=(
            "Search the user's long-term memory (facts, MEMORY.md, daily notes): "
            "ids and snippets; memory_get reads one whole."
        ),
        parameters={
            "type": "object",
            "properties": {
                "query": {"type": "string"},
                "k": {"type": "integer", "minimum": 1, "maximum": 20, "default": 5},
            },
            "required": ["query"],
        },
    )

    def __init__(self, memory: MemoryService) -> None:
        self._memory = memory

    async def run(self, args: Mapping[str, Any], ctx: ToolContext) -> ToolResult:
        query = str(args.get("query") or "").strip()
        if not query:
            raise ToolError("memory_search needs a query")
        try:
            k = min(20, max(1, int(args.get("k") or 5)))
        except (TypeError, ValueError) as exc:
            raise ToolError("k must be a number between 1 and 20") from exc
        watch = _LoadWatch(self._memory)
        try:
            result = await self._memory.search(ctx.user_id, query, k)
        except MemoryStoreError as exc:
            raise ToolError(exc.message) from exc
        notices = [n for n in (watch.notice(), result.notice) if n]
        lines = [f"({n})" for n in notices]
        if not result.hits:
            lines.append("No memory items match.")
        for hit in result.hits:
            text = hit.item.text.replace("\n", " ")
            snippet = text if len(text) <= SNIPPET else text[: SNIPPET - 1] + "…"
            lines.append(f"{_describe(hit.item)} {snippet}")
        return ToolResult(
            content="\n".join(lines),
            data={
                "mode": result.mode,
                "notice": "; ".join(notices) or None,
                "ids": [h.item.id for h in result.hits],
            },
            untrusted=any(h.item.tainted for h in result.hits),
        )


class MemoryGet:
    spec = ToolSpec(
        name="memory_get",
        deferred=True,
        description="The full text of one memory item, by the id memory_search showed.",
        parameters={
            "type": "object",
            "properties": {"id": {"type": "integer"}},
            "required": ["id"],
        },
    )

    def __init__(self, memory: MemoryService) -> None:
        self._memory = memory

    async def run(self, args: Mapping[str, Any], ctx: ToolContext) -> ToolResult:
        try:
            item_id = int(str(args.get("id", "")).lstrip("#"))
        except ValueError as exc:
            raise ToolError("id must be a memory item number, e.g. 12") from exc
        try:
            item = await self._memory.get(ctx.user_id, item_id)
        except MemoryStoreError as exc:
            raise ToolError(exc.message) from exc
        if item is None:
            raise ToolError(f"no memory item #{item_id}")
        return ToolResult(
            content=f"{_describe(item)}\n{item.text}",
            data={
                "id": item.id,
                "path": item.path,
                "text": item.text,
                "tags": list(item.tags),
                "tainted": list(item.tainted),
            },
            untrusted=bool(item.tainted),
        )


def memory_tools(memory: MemoryService) -> list[Tool]:
    return [MemorySave(memory), MemorySearch(memory), MemoryGet(memory)]
