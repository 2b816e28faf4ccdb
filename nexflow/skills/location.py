"""Resolve a skill's ``location`` to a program inside its folder, and how to start it."""

from __future__ import annotations

import os
import shutil
import sys
from pathlib import Path, PurePosixPath

from nexflow.skills.errors import SkillLocationError
from nexflow.skills.model import Skill

INTERPRETERS = {".sh": "bash", ".bash": "bash", ".py": "python3", ".js": "node", ".mjs": "node"}


def resolve_location(skill: Skill) -> Path:
    """The real path of ``skill.location``; it must stay inside the skill folder.

    Rejects absolute paths, any ``..`` component, symlinks resolving outside the folder,
    and anything that is not a regular file.
    """
    if skill.location is None:
        raise SkillLocationError(f"skill {skill.name!r} has no location: it is instructions-only")
    raw = skill.location.strip()
    pure = PurePosixPath(raw.replace("\\", "/"))
    if pure.is_absolute() or raw.startswith("~"):
        raise SkillLocationError(
            f"skill {skill.name!r}: location {raw!r} must be relative to the skill folder"
        )
    if ".." in pure.parts:
        raise SkillLocationError(
            f"skill {skill.name!r}: location {raw!r} must not contain '..' components"
        )
    folder = skill.directory.resolve()
    target = (folder / pure).resolve()
    if not target.is_relative_to(folder):
        raise SkillLocationError(
            f"skill {skill.name!r}: location {raw!r} resolves outside the skill folder "
            "(symlink escape)"
        )
    if not target.is_file():
        raise SkillLocationError(f"skill {skill.name!r}: location {raw!r} is not a file")
    return target


def interpreter_for(program: Path, path_env: str | None = None) -> list[str]:
    """The argv prefix to run ``program``: an interpreter by extension, else the file itself
    (which must be executable and start with a shebang)."""
    name = INTERPRETERS.get(program.suffix.lower())
    if name == "python3":
        return [skill_python()]
    if name is not None:
        found = shutil.which(name, path=path_env)
        if found is None:
            raise SkillLocationError(f"{program.name}: interpreter {name!r} is not on PATH")
        return [found]
    try:
        with program.open("rb") as fh:
            head = fh.read(2)
    except OSError as e:
        raise SkillLocationError(f"{program.name}: cannot read: {e.strerror}") from e
    if head != b"#!" or not os.access(program, os.X_OK):
        raise SkillLocationError(
            f"{program.name}: not a .sh/.py/.js file and not an executable with a shebang"
        )
    return []


def skill_python() -> str:
    """The interpreter for ``.py`` skills: the gateway's own, never a version-manager shim
    that would need the user's home directory to run.

    When the gateway runs in a virtualenv, that venv's ``python`` (a link to the base
    binary that activates the venv's site-packages), so bundled skills can use packages
    installed with Nexflow (``git-basic`` needs GitPython); otherwise the base binary.
    """
    if sys.prefix != sys.base_prefix:
        venv_python = os.path.abspath(sys.executable)
        if os.access(venv_python, os.X_OK):
            return venv_python
    return os.path.realpath(getattr(sys, "_base_executable", sys.executable))
