"""Which permissions a skill needs, whether it is dangerous, and what the user confirms."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from nexflow.skills.errors import SkillPermissionDenied
from nexflow.skills.model import Permission, Skill

_DETAIL_MAX = 2000


def required_permissions(skill: Skill) -> frozenset[str]:
    """The declared permissions, plus ``secrets`` when the skill asks for env variables."""
    needed = set(skill.permissions)
    if skill.env_required:
        needed.add(Permission.SECRETS.value)
    return frozenset(needed)


def check_permissions(skill: Skill, granted: frozenset[str]) -> None:
    """Raise :class:`SkillPermissionDenied` naming what is missing."""
    missing = sorted(required_permissions(skill) - granted)
    if missing:
        raise SkillPermissionDenied(
            f"skill {skill.name!r} needs permission {', '.join(missing)}, which you have not "
            "been granted (ask an admin to grant it in config)"
        )


def is_dangerous(
    skill: Skill,
    *,
    dangerous_names: frozenset[str] = frozenset(),
    filesystem_confined: bool,
    declared: bool = False,
) -> bool:
    """Dangerous skills run only after the user confirms.

    A skill is dangerous when it declares ``shell``; when it declares ``filesystem`` and
    the isolation level does not keep writes inside the workspace; or when config lists it.
    ``declared``: a bundled skill whose ``effects`` block says which calls to confirm; its
    ``shell`` permission then only says who may run it (docker, systemd, ssh-command).
    """
    if skill.name in dangerous_names:
        return True
    if Permission.SHELL in skill.permissions and not declared:
        return True
    return Permission.FILESYSTEM in skill.permissions and not filesystem_confined


def confirmation(skill: Skill, payload: Mapping[str, Any]) -> tuple[str, str]:
    """``(title, detail)`` for ``ToolContext.confirm``: the exact command or action."""
    title = f"Run skill {skill.name}?"
    command = payload.get("command")
    if isinstance(command, str):
        # The other fields say where it runs (ssh-command's host); shell-run has none.
        rest = {k: v for k, v in payload.items() if k != "command"}
        detail = f"$ {command}"
        if rest:
            detail += "\n" + json.dumps(rest, ensure_ascii=False, indent=2)
    else:
        detail = json.dumps(dict(payload), ensure_ascii=False, indent=2)
    perms = ", ".join(sorted(required_permissions(skill))) or "none"
    detail = f"{detail}\n\nskill: {skill.name} ({skill.location})\npermissions: {perms}"
    if len(detail) > _DETAIL_MAX:
        detail = detail[: _DETAIL_MAX - 1] + "…"
    return title, detail
