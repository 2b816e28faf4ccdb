"""A skill's declared ``effects`` block: parsed at load, believed only for bundled skills."""

from __future__ import annotations

import dataclasses
from pathlib import Path

from nexflow.skills import load_skill
from nexflow.skills.declared import parse_effects
from nexflow.skills.isolation import IsolationLevel
from nexflow.skills.model import BUNDLED_SKILLS
from nexflow.skills.registry import SkillRegistry
from nexflow.skills.runner import SkillRunner
from nexflow.skills.tools import RunSkillTool
from nexflow.trust import skill_effects

BLOCK = {
    "default": [],
    "untrusted_output": True,
    "rules": [
        {"when": {"action": ["restart", "stop"]}, "effects": ["write"], "confirm": True},
        {"when": {"action": "create", "dry_run": [False]}, "effects": ["write", "egress"]},
    ],
}


def write(folder: Path, effects: str) -> Path:
    folder.mkdir(parents=True)
    (folder / "run.py").write_text("print('{}')\n")
    path = folder / "SKILL.md"
    path.write_text(
        f"---\nname: {folder.name}\ndescription: Does things.\nlocation: ./run.py\n"
        f"permissions: [network]\n{effects}---\n\n# {folder.name}\n"
    )
    return path


def test_rules_match_first_and_fall_back_to_the_top_level() -> None:
    declared, error = parse_effects(BLOCK)
    assert error is None and declared is not None
    restart = declared.for_input({"action": "Restart"})
    assert (restart.writes, restart.egress, restart.confirm) == (True, False, True)
    assert restart.untrusted_output  # not set by the rule: the top level's
    create = declared.for_input({"action": "create", "dry_run": False})
    assert (create.writes, create.egress, create.confirm) == (True, True, False)
    dry = declared.for_input({"action": "create", "dry_run": True})  # no rule matches
    assert (dry.writes, dry.egress, dry.confirm) == (False, False, False)
    assert declared.for_input({}).untrusted_output


def test_a_bad_block_is_refused_at_load_with_where(tmp_path: Path) -> None:
    path = write(tmp_path / "bad", "effects:\n  default: [delete]\n  rules: [{when: {}}]\n")
    skill = load_skill(path)
    assert not skill.available
    assert "effects.default.0" in str(skill.reason) and "effects.rules.0.when" in str(skill.reason)
    _, error = parse_effects({"confirm": True, "surprise": 1})
    assert error is not None and "effects.surprise" in error


def test_declarations_are_believed_for_bundled_skills_only(tmp_path: Path) -> None:
    path = write(tmp_path / "svc", "effects:\n  default: []\n  untrusted_output: false\n")
    skill = load_skill(path)
    assert skill.available and skill.declared_effects is not None
    own = skill_effects("svc", skill.permissions, {}, bundled=True, declared=skill.declared_effects)
    assert not own.side_effects and not own.untrusted_output
    # The same words from anyone else: judged by the `network` permission.
    other = skill_effects(
        "svc", skill.permissions, {}, bundled=False, declared=skill.declared_effects
    )
    assert other.egress and other.untrusted_output


async def test_a_confirm_rule_makes_that_call_wait_for_the_user(tmp_path: Path) -> None:
    declared, _ = parse_effects(BLOCK)
    path = write(tmp_path / "ops", "")
    skill = dataclasses.replace(load_skill(path), declared_effects=declared)
    tool = RunSkillTool(
        SkillRegistry([tmp_path]),
        SkillRunner(isolation=IsolationLevel.NONE),
        workspace_for=lambda ctx: tmp_path,
    )
    assert not await tool.needs_confirmation(skill, {"action": "restart"})  # not bundled
    bundled = dataclasses.replace(skill, source=BUNDLED_SKILLS / "ops" / "SKILL.md")
    assert await tool.needs_confirmation(bundled, {"action": "restart"})
    assert not await tool.needs_confirmation(bundled, {"action": "ps"})
