"""Building the model's context: system prompt, history, the new message."""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

from nexflow.storage.base import MessageRecord

BASE_PROMPT = (
    "You are Nexflow, a self-hosted assistant for an engineer. Be direct and brief. "
    "Use a tool when it gives a better answer than guessing; never invent tool results. "
    "Reply in the user's language."
)


def system_prompt(
    persona: str,
    extra: str,
    sections: str = "",
    now: datetime | None = None,
    *,
    user: str = "",
    paged: str = "",
) -> str:
    """BASE_PROMPT, the date, ``agent.system_prompt``, the skill index, the persona files,
    the user's own files (``user``: USER.md, RULES.md, hints, memory) and the section on
    paged-out history (``paged``), in that order; empty parts are left out."""
    stamp = (now or datetime.now(UTC)).strftime("%Y-%m-%d")
    parts = [BASE_PROMPT, f"Today is {stamp}."]
    parts += [part for part in (extra, sections, persona, user, paged) if part]
    return "\n\n".join(parts)


SKILL_TOOLS = ("run_skill", "read_skill")


def skills_used(records: Sequence[MessageRecord]) -> set[str]:
    """Names of the skills read or run in these messages (for the user's skill hints)."""
    used: set[str] = set()
    for record in records:
        for call in record.tool_calls or ():
            function = call.get("function") if isinstance(call, dict) else None
            if not isinstance(function, dict) or function.get("name") not in SKILL_TOOLS:
                continue
            try:
                args = json.loads(function.get("arguments") or "{}")
            except (TypeError, ValueError):
                continue
            if isinstance(args, dict) and isinstance(args.get("name"), str):
                used.add(args["name"])
    return used


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
