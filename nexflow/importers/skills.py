"""Skills through Nexflow's verified install (:mod:`nexflow.skills.install`): each skill
folder is planned (copied into quarantine, loaded, scanned) and committed only when the
scan found nothing high or medium. A flagged skill is never installed by an import: it is
reported with its findings and the command that installs it deliberately.

A dry run plans in a throw-away installer under a temporary folder, so the Nexflow home
is not touched; the home's lock is only read, to say what is already installed.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

from nexflow.importers.model import ReportRow, SkillSource, SourceHome, Status
from nexflow.skills.install import Installer, InstallError, InstallPlan, Lock
from nexflow.skills.install.lock import hash_tree


def import_skills(source: SourceHome, home: Path, *, dry_run: bool) -> list[ReportRow]:
    if not source.skills:
        return []
    real = Installer.at_home(home)
    try:
        lock = real.lock()
    except InstallError as e:
        return [_row(source, s, real, "failed", e.message) for s in source.skills]
    with tempfile.TemporaryDirectory(prefix="nexflow-import-") as tmp:
        planner = real
        if dry_run:
            scratch = Path(tmp)
            planner = Installer(
                skills_dir=scratch / "skills",
                lock_path=scratch / "skills.lock",
                quarantine_dir=scratch / "quarantine",
            )
        return [
            _one(source, skill, planner, real, lock, dry_run=dry_run) for skill in source.skills
        ]


def _one(
    source: SourceHome,
    skill: SkillSource,
    planner: Installer,
    real: Installer,
    lock: Lock,
    *,
    dry_run: bool,
) -> ReportRow:
    try:
        plan = planner.plan(str(skill.path))
    except InstallError as e:
        return _row(source, skill, real, "failed", e.message)
    committed = False
    try:
        notes = tuple(f"warning: {w}" for w in plan.load_warnings)
        if plan.flagged:
            return _row(
                source,
                skill,
                real,
                "flagged",
                _worst(plan),
                _findings(plan, skill) + notes,
                plan.name,
            )
        entry = lock.entries.get(plan.name)
        if entry is not None:
            if dict(entry.files) == hash_tree(plan.staged):
                return _row(source, skill, real, "unchanged", "installed already", notes, plan.name)
            return _row(
                source,
                skill,
                real,
                "conflict",
                f"another version of {plan.name!r} is installed; kept it "
                f"(nexflow skills update {plan.name}, or remove it first)",
                notes,
                plan.name,
            )
        if dry_run:
            return _row(source, skill, real, "would import", _permissions(plan), notes, plan.name)
        installed = real.commit(plan)
        committed = True
        return _row(source, skill, real, "imported", _permissions(plan), notes, installed.name)
    except InstallError as e:
        return _row(source, skill, real, "failed", e.message, (), plan.name)
    finally:
        if not committed:
            planner.discard(plan)


def _row(
    source: SourceHome,
    skill: SkillSource,
    real: Installer,
    status: Status,
    reason: str,
    details: tuple[str, ...] = (),
    name: str | None = None,
) -> ReportRow:
    dest = real.skills_dir / (name or skill.name)
    try:
        shown = str(dest.relative_to(real.lock_path.parent))
    except ValueError:
        shown = str(dest)
    return ReportRow(
        "skill", name or skill.name, source.rel(skill.path), shown, status, reason, details
    )


def _worst(plan: InstallPlan) -> str:
    serious = [f for f in plan.findings if f.severity in ("high", "medium")]
    return f"the scan found {len(serious)} problem(s); not installed"


def _findings(plan: InstallPlan, skill: SkillSource) -> tuple[str, ...]:
    lines = [f.render() for f in plan.findings]
    lines.append(f"review it, then install it deliberately: nexflow skills install {skill.path}")
    return tuple(lines)


def _permissions(plan: InstallPlan) -> str:
    perms = ", ".join(sorted(plan.declared_permissions))
    return f"permissions: {perms}" if perms else ""
