"""The skills index that goes into the system prompt: names and descriptions only."""

from __future__ import annotations

from collections.abc import Callable, Iterable

from nexflow.skills.model import Skill

HEADER = "Skills (call read_skill for instructions before using one; run_skill runs it):"
_STEPS = (200, 120, 60)


def default_relevance(skill: Skill) -> float:
    """Always-on skills first, then runnable ones; the rest by name."""
    return (2.0 if skill.always else 0.0) + (1.0 if skill.runnable else 0.0)


def eligible(skills: Iterable[Skill]) -> list[Skill]:
    return [s for s in skills if s.available and s.model_invocable]


def _line(skill: Skill, limit: int) -> str:
    text = " ".join(skill.description.split())
    if len(text) > limit:
        text = text[: limit - 1].rstrip() + "…"
    emoji = f"{skill.emoji} " if skill.emoji else ""
    return f"- {emoji}{skill.name}: {text}"


def render_index(
    skills: Iterable[Skill],
    char_budget: int = 2000,
    relevance: Callable[[Skill], float] = default_relevance,
) -> str:
    """Name, emoji and description of eligible skills within ``char_budget`` characters.

    Descriptions are shortened step by step (200 → 120 → 60 chars), then left out (names
    grouped by category, one line each: read_skill gives the rest); if even that does not
    fit, the least relevant skills are dropped and a last line says how many.
    Returns "" when no skill is eligible.
    """
    ranked = sorted(eligible(skills), key=lambda s: (-relevance(s), s.name))
    if not ranked:
        return ""
    for limit in _STEPS:
        lines = [_line(s, limit) for s in ranked]
        text = "\n".join([HEADER, *lines])
        if len(text) <= char_budget:
            return text
    compact = "\n".join([HEADER, *_by_category(ranked)])
    if len(compact) <= char_budget:
        return compact
    footer_room = len("\n(9999 more skills not listed; /skills shows all)")
    kept: list[str] = []
    used = len(HEADER)
    for line in lines:
        if used + 1 + len(line) + footer_room > char_budget:
            break
        kept.append(line)
        used += 1 + len(line)
    omitted = len(lines) - len(kept)
    footer = f"({omitted} more skills not listed; /skills shows all)"
    return "\n".join([HEADER, *kept, footer])[:char_budget]


def _by_category(ranked: Iterable[Skill]) -> list[str]:
    groups: dict[str, list[str]] = {}
    for skill in ranked:
        groups.setdefault(skill.category or "other", []).append(skill.name)
    return [f"- {group}: {', '.join(sorted(names))}" for group, names in sorted(groups.items())]
