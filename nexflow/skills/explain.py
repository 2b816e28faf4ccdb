"""What an instructions-only skill is for and how to use it: the reply to ``/run <skill>``
and ``nexflow skills run`` for a skill with no program, instead of an error."""

from __future__ import annotations

import re

from nexflow.skills.model import Skill

_USAGE_HEADING = re.compile(
    r"^#{1,4}\s*(when to use|usage|how to use|use it|examples?|quick start)\b.*$",
    re.IGNORECASE | re.MULTILINE,
)
_ANY_HEADING = re.compile(r"^#{1,4}\s", re.MULTILINE)
MAX_USAGE_CHARS = 700


def usage_section(body: str, limit: int = MAX_USAGE_CHARS) -> str:
    """The body's "When to use" / "Usage" / "Examples" section, shortened; "" if none."""
    match = _USAGE_HEADING.search(body)
    if match is None:
        return ""
    rest = body[match.end() :]
    end = _ANY_HEADING.search(rest)
    text = rest[: end.start()] if end else rest
    text = text.strip()
    if len(text) > limit:
        text = text[:limit].rsplit("\n", 1)[0].rstrip() + "\n…"
    return text


def explain(skill: Skill) -> str:
    """A short, user-facing explanation of an instructions-only skill."""
    emoji = f"{skill.emoji} " if skill.emoji else ""
    lines = [f"{emoji}{skill.name}: {skill.description}".rstrip(), ""]
    lines.append(
        "This skill has no program to run: it teaches the assistant how to do something. "
        "Ask for it in your own words in chat; the assistant reads the skill's "
        "instructions and follows them"
        + (
            " with its tools."
            if not skill.allowed_tools
            else f" ({', '.join(skill.allowed_tools)})."
        )
    )
    if not skill.model_invocable:
        lines.append("The assistant does not pick it on its own: name it in your request.")
    usage = usage_section(skill.body)
    if usage:
        lines += ["", "When to use it:", usage]
    return "\n".join(lines)
