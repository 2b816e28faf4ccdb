"""Building the model's context: system prompt, history, the new message."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

from nexflow.storage.base import MessageRecord

BASE_PROMPT = (
    "You are Nexflow, a self-hosted assistant for an engineer. Be direct and brief. "
    "Use a tool when it gives a better answer than guessing; never invent tool results. "
    "Reply in the user's language."
)


def system_prompt(persona: str, extra: str, sections: str = "", now: datetime | None = None) -> str:
    stamp = (now or datetime.now(UTC)).strftime("%Y-%m-%d")
    parts = [BASE_PROMPT, f"Today is {stamp}."]
    if extra:
        parts.append(extra)
    if sections:
        parts.append(sections)
    if persona:
        parts.append(persona)
    return "\n\n".join(parts)


def history_messages(records: Sequence[MessageRecord]) -> list[dict[str, Any]]:
    """Stored messages in wire format. A window that starts inside a tool exchange is
    trimmed to the next user message, so every tool result follows its call."""
    start = 0
    while start < len(records) and records[start].role != "user":
        start += 1
    out: list[dict[str, Any]] = []
    for record in records[start:]:
        message: dict[str, Any] = {"role": record.role, "content": record.content}
        if record.tool_calls:
            message["tool_calls"] = record.tool_calls
        if record.tool_call_id:
            message["tool_call_id"] = record.tool_call_id
        if record.name and record.role == "tool":
            message["name"] = record.name
        out.append(message)
    return out
