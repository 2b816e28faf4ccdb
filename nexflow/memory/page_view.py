"""How paged-out pages are shown: the prompt's "Earlier in this conversation" section and
the ``/paged`` listing. Pure text; the pager decides what to show (docs/memory.md)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime

from nexflow import i18n
from nexflow.memory.pages import Page
from nexflow.memory.transcript import estimate_tokens, render
from nexflow.storage.base import MessageRecord

LISTED_PAGES = 30  # the newest pages ``/paged`` lists


def prompt_block(
    pages: Sequence[Page],
    restored: Sequence[tuple[Page, list[MessageRecord]]],
    room: int,
) -> str:
    """The prompt section: a header, one summary line per page not restored (newest first
    while they fit in ``room`` tokens, a count for the rest), then the restored pages."""
    shown = {p.id for p, _ in restored}
    lines = [
        "## Earlier in this conversation",
        f"{len(pages)} older part(s) of this conversation are paged out to memory (nothing "
        "is deleted); context_pages lists them, context_page_get restores one in full.",
    ]
    room -= sum(estimate_tokens(line) for line in lines)
    summaries: list[str] = []
    for page in reversed(pages):  # the newest pages first, while they fit
        if page.id in shown:
            continue
        line = f"- page {page.id} ({when(page.started_at)}): {page.summary}"
        cost = estimate_tokens(line) + 1
        if cost > room:
            break
        summaries.append(line)
        room -= cost
    hidden = len(pages) - len(shown) - len(summaries)
    if hidden:
        lines.append(f"- ({hidden} earlier page(s) not summarised here)")
    lines += reversed(summaries)
    if restored:
        lines.append("Restored in full because they relate to the new message:")
        for page, messages in restored:
            lines.append(f"### page {page.id} ({when(page.started_at)})")
            lines.append(render(messages))
    return "\n".join(lines)


def listing(lang: str, pages: Sequence[Page]) -> str:
    """The ``/paged`` reply for a session's pages."""
    if not pages:
        return i18n.t(lang, "paged_none")
    lines = [i18n.t(lang, "paged_header", count=len(pages), first=pages[0].id)]
    for page in pages[-LISTED_PAGES:]:
        flag = "" if page.flushed else i18n.t(lang, "paged_unflushed")
        lines.append(
            i18n.t(
                lang,
                "paged_line",
                id=page.id,
                when=when(page.started_at),
                messages=page.messages,
                flag=flag,
                summary=page.summary,
            )
        )
    return "\n".join(lines)


def when(ts: float) -> str:
    return datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%d %H:%M")
