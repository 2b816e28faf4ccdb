"""The model's tools for paged-out context: ``context_pages`` and ``context_page_get``.

They are offered only in sessions that have paged-out pages (the gateway hides them
otherwise, to keep the prompt small). Every call acts on the calling user's pages only.
Both only read; a restored page is untrusted when its transcript holds untrusted tool
output (an untrusted frame, :func:`nexflow.trust.framing.untrusted_sources`).
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from nexflow.memory.errors import MemoryStoreError
from nexflow.memory.pages import Page
from nexflow.memory.paging import ContextPager
from nexflow.tools.base import Tool, ToolContext, ToolError, ToolResult, ToolSpec
from nexflow.trust.framing import untrusted_sources

MAX_LISTED = 50


def _describe(page: Page) -> str:
    start = datetime.fromtimestamp(page.started_at, UTC).strftime("%Y-%m-%d %H:%M")
    end = datetime.fromtimestamp(page.ended_at, UTC).strftime("%H:%M")
    flushed = "facts saved" if page.flushed else "facts not saved yet"
    return f"page {page.id} [{start}–{end}, {page.messages} messages, {flushed}]"


class ContextPages:
    spec = ToolSpec(
        name="context_pages",
        description=(
            "List the parts of this conversation that were paged out of your context (oldest "
            "first), with summaries. Use context_page_get to restore one in full."
        ),
    )

    def __init__(self, pager: ContextPager) -> None:
        self._pager = pager

    async def run(self, args: Mapping[str, Any], ctx: ToolContext) -> ToolResult:
        try:
            pages = await self._pager.pages(ctx.session_id)
        except MemoryStoreError as exc:
            raise ToolError(exc.message) from exc
        pages = [p for p in pages if p.user_id == ctx.user_id]
        if not pages:
            return ToolResult("Nothing in this conversation has been paged out.", data={"ids": []})
        lines = [f"{_describe(p)} {p.summary}" for p in pages[-MAX_LISTED:]]
        if len(pages) > MAX_LISTED:
            lines.insert(0, f"({len(pages) - MAX_LISTED} older pages not listed)")
        return ToolResult("\n".join(lines), data={"ids": [p.id for p in pages]})


class ContextPageGet:
    spec = ToolSpec(
        name="context_page_get",
        description="Restore one paged-out page of the conversation in full, by its id.",
        parameters={
            "type": "object",
            "properties": {"id": {"type": "integer"}},
            "required": ["id"],
        },
    )

    def __init__(self, pager: ContextPager) -> None:
        self._pager = pager

    async def run(self, args: Mapping[str, Any], ctx: ToolContext) -> ToolResult:
        try:
            page_id = int(str(args.get("id", "")).lstrip("#").removeprefix("page").strip())
        except ValueError as exc:
            raise ToolError("id must be a page number, e.g. 3") from exc
        try:
            found = await self._pager.page(ctx.user_id, page_id)
        except MemoryStoreError as exc:
            raise ToolError(exc.message) from exc
        if found is None:
            raise ToolError(f"no paged-out page {page_id}")
        page, transcript = found
        return ToolResult(
            f"{_describe(page)}\nSummary: {page.summary}\n\n{transcript}",
            data={"id": page.id, "session_id": page.session_id, "messages": page.messages},
            untrusted=bool(untrusted_sources([transcript])),
        )


def page_tools(pager: ContextPager) -> list[Tool]:
    return [ContextPages(pager), ContextPageGet(pager)]
