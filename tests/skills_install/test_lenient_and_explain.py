"""The lenient loader (style rules warn, broken files are refused with file:line) and the
explanation an instructions-only skill gives for ``/run`` in chat."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from nexflow.skills.explain import explain, usage_section
from nexflow.skills.loader import load_skill
from nexflow.testing.harness import GatewayHarness


def write(tmp_path: Path, folder: str, text: str) -> Path:
    path = tmp_path / folder / "SKILL.md"
    path.parent.mkdir(parents=True)
    path.write_text(text, encoding="utf-8")
    return path


@pytest.mark.parametrize(
    ("folder", "name", "warning"),
    [
        ("notes", "Notes Helper", r"name 'Notes Helper' is not lowercase"),
        ("pdf", "PDF", r"name 'PDF' is not lowercase"),
        ("x", "under_score", r"name 'under_score' is not lowercase"),
        ("long", "a" * 70, r"name is 70 characters; Agent Skills allows 64"),
    ],
)
def test_style_breaking_names_load_verbatim_with_a_warning(
    tmp_path: Path, folder: str, name: str, warning: str
) -> None:
    skill = load_skill(write(tmp_path, folder, f"---\nname: {name}\ndescription: d\n---\n"))
    assert skill.available and skill.load_error is None
    assert skill.name == name
    assert any(re.search(warning, w) for w in skill.warnings), skill.warnings
    assert any("differs from its folder" in w for w in skill.warnings)


def test_long_description_loads_with_a_warning(tmp_path: Path) -> None:
    text = f"---\nname: long\ndescription: {'d' * 1500}\n---\n"
    skill = load_skill(write(tmp_path, "long", text))
    assert skill.available and len(skill.description) == 1500
    assert any("description is 1500 characters" in w for w in skill.warnings)


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ("---\nname: x\ndescription: d\nmetadata: {a: [}\n---\n", r"SKILL\.md:4: 'metadata'"),
        ("---\ndescription: d\n---\n", r"SKILL\.md: frontmatter has no 'name'"),
        ("---\nname: x\ndescription: ''\n---\n", r"SKILL\.md: frontmatter has no 'description'"),
        ("---\nname: x\ndescription:\n---\n", r"SKILL\.md: frontmatter has no 'description'"),
        ("no frontmatter\n", r"SKILL\.md:1: no YAML frontmatter"),
    ],
)
def test_broken_files_are_still_refused_with_file_and_line(
    tmp_path: Path, text: str, reason: str
) -> None:
    path = write(tmp_path, "x", text)
    skill = load_skill(path)
    assert not skill.available
    assert skill.reason is not None and skill.reason.startswith(str(path))
    assert re.search(reason, skill.reason), skill.reason


def test_explain_uses_description_and_usage_section(tmp_path: Path) -> None:
    text = (
        "---\nname: haiku\ndescription: Writes haiku.\nemoji: 🌸\n---\n# haiku\n\n"
        '## When to use\n- "write a haiku about rain"\n\n## Details\nsecret sauce\n'
    )
    out = explain(load_skill(write(tmp_path, "haiku", text)))
    assert out.startswith("🌸 haiku: Writes haiku.")
    assert "no program to run" in out
    assert 'When to use it:\n- "write a haiku about rain"' in out
    assert "secret sauce" not in out


def test_usage_section_is_optional_and_bounded() -> None:
    assert usage_section("# title\n\nno sections here\n") == ""
    long = "## Usage\n" + "line of text\n" * 200
    assert len(usage_section(long)) <= 710


async def test_slash_run_of_an_instructions_only_skill_explains_it(
    gateway: GatewayHarness,
) -> None:
    reply = (await gateway.chat("/run reminder"))["reply"]
    assert reply.startswith("⏰ reminder: Set, list and cancel reminders")
    assert "has no program to run" in reply
    assert "no program to run; read it with read_skill" not in reply  # not the old error
    assert gateway.llm.requests == []
