"""The normalised, immutable view of a skill that the rest of Nexflow works with.

Every dialect of ``SKILL.md`` (Agent Skills, OpenClaw and its older names, nanobot, the
Nexflow PRD) is folded into :class:`Skill` by :mod:`nexflow.skills.manifest`; nothing
downstream looks at raw frontmatter.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path
from typing import Any

from nexflow.skills.declared import DeclaredEffects

BUNDLED_SKILLS = Path(__file__).resolve().parents[2] / "skills"
"""Nexflow's own skills: the only ones whose declared ``effects`` are believed."""

DEFAULT_TIMEOUT_SEC = 30.0
DEFAULT_MAX_OUTPUT_KB = 256


class Permission(StrEnum):
    """What a skill may do; granted per user/role in config and checked before a run."""

    SHELL = "shell"
    FILESYSTEM = "filesystem"
    NETWORK = "network"
    SECRETS = "secrets"


KNOWN_PERMISSIONS = frozenset(p.value for p in Permission)


@dataclass(frozen=True, slots=True)
class InstallHint:
    """How to install a missing dependency (shown to the user, never executed)."""

    kind: str
    label: str = ""
    package: str = ""
    bins: tuple[str, ...] = ()
    os: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class Requirements:
    """What must be present on the host for the skill to be eligible."""

    bins: tuple[str, ...] = ()
    any_bins: tuple[str, ...] = ()
    env: tuple[str, ...] = ()
    files: tuple[str, ...] = ()
    os: tuple[str, ...] = ()
    config: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class Skill:
    """One skill folder after loading and eligibility checks.

    ``available`` is False when the skill failed to load or its requirements are not met;
    ``reason`` then says why, naming the file and line when known. ``warnings`` holds
    non-fatal findings (name differs from folder, YAML recovered by the line parser...).
    """

    name: str
    description: str
    source: Path
    body: str = ""
    emoji: str | None = None
    version: str | None = None
    author: str | None = None
    homepage: str | None = None
    license: str | None = None
    compatibility: str | None = None
    location: str | None = None
    tags: tuple[str, ...] = ()
    category: str | None = None
    permissions: frozenset[str] = frozenset()
    env_required: tuple[str, ...] = ()
    env_optional: tuple[str, ...] = ()  # passed on when granted (endpoints, options)
    # Host-control sockets the skill may reach (nexflow.skills.isolation.PRIVILEGED_SOCKETS).
    sockets: tuple[str, ...] = ()
    primary_env: str | None = None
    timeout_sec: float = DEFAULT_TIMEOUT_SEC
    max_output_kb: int = DEFAULT_MAX_OUTPUT_KB
    requirements: Requirements = Requirements()
    install: tuple[InstallHint, ...] = ()
    input_schema: Mapping[str, Any] | None = None
    output_schema: Mapping[str, Any] | None = None
    allowed_tools: tuple[str, ...] = ()
    user_invocable: bool = True
    model_invocable: bool = True
    always: bool = False
    metadata: Mapping[str, Any] = field(default_factory=dict)
    # The frontmatter's ``effects`` block (nexflow.skills.declared); believed if bundled.
    declared_effects: DeclaredEffects | None = None
    warnings: tuple[str, ...] = ()
    load_error: str | None = None
    available: bool = True
    reason: str | None = None

    @property
    def directory(self) -> Path:
        return self.source.parent

    @property
    def bundled(self) -> bool:
        """True for a skill from Nexflow's own ``skills/`` folder."""
        return self.source.resolve().is_relative_to(BUNDLED_SKILLS)

    @property
    def runnable(self) -> bool:
        """True when the skill has a program to run; instructions-only skills just teach."""
        return self.location is not None

    def with_status(self, *, available: bool, reason: str | None) -> Skill:
        return dataclasses.replace(self, available=available, reason=reason)

    def summary(self) -> dict[str, Any]:
        """The JSON shape of ``GET /api/v1/skills`` items."""
        return {
            "name": self.name,
            "description": self.description,
            "emoji": self.emoji,
            "available": self.available,
            "reason": self.reason,
            "runnable": self.runnable,
            "permissions": sorted(self.permissions),
            "source": str(self.source),
            "warnings": list(self.warnings),
        }
