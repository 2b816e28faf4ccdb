"""The prompt index: eligible skills only, within the character budget."""

from __future__ import annotations

from pathlib import Path

from skills_support import BUNDLED, CORPUS

from nexflow.skills import SkillRegistry, render_index
from nexflow.skills.index import HEADER
from nexflow.skills.model import Skill


def skill(name: str, description: str = "does things", **kw: object) -> Skill:
    return Skill(name=name, description=description, source=Path(f"/x/{name}/SKILL.md"), **kw)  # type: ignore[arg-type]


def test_only_eligible_skills_with_name_emoji_description() -> None:
    text = render_index(
        [
            skill("alpha", emoji="🅰️"),
            skill("hidden", available=False, reason="missing binary"),
            skill("manual-only", model_invocable=False),
        ]
    )
    assert text == f"{HEADER}\n- 🅰️ alpha: does things"


def test_empty_when_nothing_is_eligible() -> None:
    assert render_index([skill("x", available=False)]) == ""


def test_descriptions_are_shortened_before_skills_are_dropped() -> None:
    skills = [skill(f"s{i:02d}", "word " * 100) for i in range(5)]
    text = render_index(skills, char_budget=800)
    assert len(text) <= 800
    assert text.count("\n- ") == 5
    assert "…" in text


def test_names_by_category_before_any_skill_is_dropped() -> None:
    skills = [skill(f"s{i:02d}", "word " * 100) for i in range(50)]
    text = render_index(skills, char_budget=1000)
    assert len(text) <= 1000
    assert "word" not in text  # descriptions left out: read_skill gives them
    assert text.splitlines()[1].startswith("- other: s00, s01")
    assert all(f"s{i:02d}" in text for i in range(50))


def test_least_relevant_are_dropped_and_counted() -> None:
    skills = [skill(f"s{i:02d}", "word " * 100) for i in range(50)]
    skills.append(skill("zz-always", always=True))
    text = render_index(skills, char_budget=300)
    assert len(text) <= 300
    lines = text.splitlines()
    assert lines[1].startswith("- zz-always")  # always-on ranks first
    shown = sum(line.startswith("- ") for line in lines)
    assert lines[-1] == f"({51 - shown} more skills not listed; /skills shows all)"


def test_whole_corpus_fits_the_default_budget() -> None:
    registry = SkillRegistry([BUNDLED, CORPUS])
    registry.reload()
    skills = registry.list()
    text = render_index(skills)
    assert len(text) <= 1000
    # Every eligible skill is still named (grouped by category, without descriptions).
    assert all(s.name in text for s in skills if s.available and s.model_invocable)
