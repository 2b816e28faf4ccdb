"""Messages as context paging sees them: estimated tokens, exchanges, pages, transcripts.

Pure functions over :class:`~nexflow.storage.base.MessageRecord`; see
:mod:`nexflow.memory.paging`.
"""

from __future__ import annotations

import json
from collections.abc import Sequence

from nexflow.storage.base import MessageRecord

MESSAGE_OVERHEAD = 4  # tokens a chat message costs beyond its text (role, separators)
MAX_SUMMARY_CHARS = 400


def estimate_tokens(text: str) -> int:
    """UTF-8 bytes / 4: 3-6 % over cl100k/o200k for English and code, over for Cyrillic
    (up to 60 % with o200k), up to a third under for CJK (docs/memory.md). No tokenizer."""
    return (len(text.encode("utf-8", "replace")) + 3) // 4


def message_tokens(message: MessageRecord) -> int:
    tokens = estimate_tokens(message.content) + MESSAGE_OVERHEAD
    if message.tool_calls:
        tokens += estimate_tokens(json.dumps(message.tool_calls, ensure_ascii=False))
    return tokens


def exchanges(messages: Sequence[MessageRecord]) -> list[list[MessageRecord]]:
    """Whole exchanges: each user message with what follows it up to the next one."""
    groups: list[list[MessageRecord]] = []
    for message in messages:
        if message.role == "user" or not groups:
            groups.append([message])
        else:
            groups[-1].append(message)
    return groups


def plan_pages(
    groups: Sequence[list[MessageRecord]], recent_max: int, page_tokens: int
) -> list[list[MessageRecord]]:
    """The oldest exchanges to page out, grouped into pages; [] while within ``recent_max``.

    Pages out down to ``recent_max - page_tokens`` (so paging does not run every turn),
    never the newest exchange, whole exchanges only.
    """
    sizes = [sum(message_tokens(m) for m in g) for g in groups]
    total = sum(sizes)
    if total <= recent_max or len(groups) < 2:
        return []
    target = max(0, recent_max - page_tokens)
    pages: list[list[MessageRecord]] = []
    current: list[MessageRecord] = []
    current_size = 0
    i = 0
    while total > target and i < len(groups) - 1:
        current += groups[i]
        current_size += sizes[i]
        total -= sizes[i]
        i += 1
        if current_size >= page_tokens:
            pages.append(current)
            current, current_size = [], 0
    if current:
        if pages and current_size < page_tokens // 2:
            pages[-1] += current
        else:
            pages.append(current)
    return pages


def clip_text(text: str, limit: int) -> str:
    text = text.strip()
    return text if len(text) <= limit else text[: limit - 1].rstrip() + "…"


def _call_names(message: MessageRecord) -> list[str]:
    names = []
    for call in message.tool_calls or []:
        function = call.get("function") if isinstance(call, dict) else None
        if isinstance(function, dict):
            names.append(str(function.get("name") or "?"))
    return names


def render(messages: Sequence[MessageRecord], clip: int | None = None) -> str:
    """Messages as a plain transcript (``clip``: cut each message's text at that length)."""

    def cut(text: str) -> str:
        return clip_text(text, clip) if clip is not None else text.strip()

    lines: list[str] = []
    for m in messages:
        if m.role == "tool":
            lines.append(f"tool {m.name or ''} result: {cut(m.content)}")
            continue
        if m.content.strip():
            lines.append(f"{m.role}: {cut(m.content)}")
        for call in m.tool_calls or []:
            function = call.get("function") if isinstance(call, dict) else None
            if isinstance(function, dict):
                args = cut(str(function.get("arguments") or ""))
                lines.append(f"{m.role} called {function.get('name')}({args})")
    return "\n".join(lines)


def fallback_summary(messages: Sequence[MessageRecord]) -> str:
    """A summary made without a model: what the user said and which tools ran."""
    said = [clip_text(m.content, 90) for m in messages if m.role == "user" and m.content.strip()]
    tools = sorted({name for m in messages for name in _call_names(m)})
    parts = [f"{len(messages)} messages"]
    if said:
        parts.append("the user said: " + " | ".join(said[:3]) + (" | …" if len(said) > 3 else ""))
    if tools:
        parts.append("tools: " + ", ".join(tools))
    return clip_text("; ".join(parts), MAX_SUMMARY_CHARS)
