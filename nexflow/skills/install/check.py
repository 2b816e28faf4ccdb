"""The load-time hook: a locked skill whose files changed since install is refused."""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Iterable, Mapping
from pathlib import Path

from nexflow.skills.install.errors import InstallError
from nexflow.skills.install.lock import differences, read_lock
from nexflow.skills.model import Skill

log = logging.getLogger(__name__)
LOCK_NAME = "skills.lock"


def locks_beside(roots: Iterable[Path]) -> list[Path]:
    """The ``skills.lock`` next to each root (``<home>/skills`` → ``<home>/skills.lock``)."""
    return [root.parent / LOCK_NAME for root in roots]


def refuse_tampered(skills: Mapping[str, Skill], locks: Iterable[Path]) -> dict[str, Skill]:
    """``skills`` with every locked skill whose files differ from its lock made unavailable,
    the reason naming the first file that changed."""
    locked: dict[Path, list[str]] = {}
    for path in dict.fromkeys(locks):
        if not path.is_file():
            continue
        try:
            lock = read_lock(path)
        except InstallError as e:
            log.warning("ignoring lock: %s", e.message)
            continue
        for name, entry in lock.entries.items():
            folder = (path.parent / entry.folder).resolve()
            locked[folder] = differences(entry.files, lock.folder_of(name))
    if not locked:
        return dict(skills)
    result = dict(skills)
    for name, skill in skills.items():
        changed = locked.get(skill.directory.resolve())
        if changed:
            more = f" (and {len(changed) - 1} more change(s))" if len(changed) > 1 else ""
            reason = (
                f"{skill.source}: {changed[0]}{more}; refused: reinstall it or run "
                "'nexflow skills verify'"
            )
            result[name] = dataclasses.replace(
                skill, load_error=reason, available=False, reason=reason
            )
    return result
