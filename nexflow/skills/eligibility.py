"""Is a loaded skill usable on this host? Binaries, env, OS, files, host config, location."""

from __future__ import annotations

import os
import shutil
import sys
from collections.abc import Mapping
from dataclasses import dataclass, field

from nexflow.skills.errors import SkillLocationError
from nexflow.skills.location import interpreter_for, resolve_location
from nexflow.skills.model import Skill

_OS_ALIASES = {"macos": "darwin", "mac": "darwin", "osx": "darwin", "windows": "win32"}


@dataclass(frozen=True, slots=True)
class HostContext:
    """What the host offers. ``env`` is what a skill could be granted (config secrets and
    the gateway environment); ``config_keys`` are host config keys OpenClaw-style skills
    may require (``requires.config``)."""

    env: Mapping[str, str] = field(default_factory=lambda: dict(os.environ))
    path: str | None = None
    platform: str = sys.platform
    config_keys: frozenset[str] = frozenset()


def problems(skill: Skill, host: HostContext) -> list[str]:
    """Why ``skill`` cannot run here; empty when it can."""
    if skill.load_error:
        return [skill.load_error]
    found: list[str] = []
    req = skill.requirements
    path = host.path if host.path is not None else host.env.get("PATH", os.defpath)
    missing = [b for b in req.bins if shutil.which(b, path=path) is None]
    if missing:
        found.append(f"missing binary on PATH: {', '.join(missing)}")
    if req.any_bins and not any(shutil.which(b, path=path) for b in req.any_bins):
        found.append(f"needs one of these binaries on PATH: {', '.join(req.any_bins)}")
    unset = [name for name in req.env if not host.env.get(name)]
    if unset:
        found.append(f"environment variable not set: {', '.join(unset)}")
    wanted_os = {_OS_ALIASES.get(o.lower(), o.lower()) for o in req.os}
    if wanted_os and host.platform not in wanted_os:
        found.append(f"runs on {', '.join(sorted(wanted_os))}, this host is {host.platform}")
    absent = [f for f in req.files if not (skill.directory / f).exists()]
    if absent:
        found.append(f"missing file: {', '.join(absent)}")
    unconfigured = [k for k in req.config if k not in host.config_keys]
    if unconfigured:
        found.append(
            f"needs host config {', '.join(unconfigured)} (an OpenClaw setting Nexflow "
            "does not provide)"
        )
    if skill.location is not None:
        try:
            interpreter_for(resolve_location(skill), path)
        except SkillLocationError as e:
            found.append(e.message)
    return found


def evaluate(skill: Skill, host: HostContext) -> Skill:
    """``skill`` with ``available`` and ``reason`` set for this host."""
    found = problems(skill, host)
    if not found:
        return skill.with_status(available=True, reason=None)
    reason = found[0] if skill.load_error else f"{skill.source}: " + "; ".join(found)
    return skill.with_status(available=False, reason=reason)
