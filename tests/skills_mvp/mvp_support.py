"""Shared helpers for the MVP skill tests (a unique module name: tests/skills has its own
conftest and support modules)."""

from __future__ import annotations

import os
import tempfile
from collections.abc import Awaitable, Callable, Mapping
from pathlib import Path

from nexflow.skills import load_skill
from nexflow.skills.eligibility import HostContext, evaluate
from nexflow.skills.isolation import IsolationLevel, detect
from nexflow.skills.limits import Limits
from nexflow.skills.model import Skill
from nexflow.skills.result import RunResult
from nexflow.skills.runner import SkillRunner

BUNDLED = Path(__file__).resolve().parents[2] / "skills"

RunSkill = Callable[..., Awaitable[RunResult]]


def _levels() -> list[IsolationLevel]:
    """``none`` plus the best sandbox this host supports (probed once per session)."""
    with tempfile.TemporaryDirectory() as tmp:
        best, _ = detect(Path(tmp))
    return [IsolationLevel.NONE] if best is IsolationLevel.NONE else [IsolationLevel.NONE, best]


LEVELS = _levels()


def bundled(name: str, env: Mapping[str, str] | None = None) -> Skill:
    host = HostContext(env={"PATH": os.environ.get("PATH", os.defpath), **(env or {})})
    skill = evaluate(load_skill(BUNDLED / name / "SKILL.md"), host)
    assert skill.available, skill.reason
    return skill


def make_runner(level: IsolationLevel = IsolationLevel.NONE) -> SkillRunner:
    return SkillRunner(isolation=level, limits=Limits(nproc=64))


def names(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir())


def exists(path: Path) -> bool:
    return path.exists()
