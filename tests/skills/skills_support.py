"""Shared helpers for the skills tests (imported by the test modules and conftest)."""

from __future__ import annotations

import json
import textwrap
from collections.abc import Callable
from pathlib import Path
from typing import Any

from nexflow.skills.isolation import IsolationLevel, detect
from nexflow.skills.limits import Limits
from nexflow.skills.runner import SkillRunner

REPO = Path(__file__).resolve().parents[2]
CORPUS = Path(__file__).resolve().parents[2].parent / "shared" / "corpus" / "skills"
BUNDLED = REPO / "skills"

MakeSkill = Callable[..., Path]


def write_skill(
    root: Path,
    name: str,
    *,
    script: str | None = None,
    script_name: str = "run.sh",
    description: str = "A test skill.",
    extra: dict[str, Any] | None = None,
    body: str = "# test\n",
) -> Path:
    folder = root / name
    folder.mkdir(parents=True, exist_ok=True)
    lines = ["---", f"name: {name}", f"description: {description}"]
    fields = dict(extra or {})
    if script is not None:
        (folder / script_name).write_text(textwrap.dedent(script).lstrip())
        fields.setdefault("location", f"./{script_name}")
    for key, value in fields.items():
        lines.append(f"{key}: {json.dumps(value)}")
    lines += ["---", body]
    (folder / "SKILL.md").write_text("\n".join(lines))
    return folder / "SKILL.md"


def _levels() -> list[IsolationLevel]:
    """Every level that works on this host (probed once per session)."""
    import tempfile

    found = [IsolationLevel.NONE]
    with tempfile.TemporaryDirectory() as tmp:
        for level in (IsolationLevel.BWRAP, IsolationLevel.NAMESPACES):
            if detect(Path(tmp), prefer=level)[0] is level:
                found.append(level)
    return found


LEVELS = _levels()


def runner_for(level: IsolationLevel, **kwargs: Any) -> SkillRunner:
    limits = kwargs.pop("limits", Limits(nproc=64))
    return SkillRunner(isolation=level, limits=limits, **kwargs)
