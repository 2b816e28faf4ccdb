"""The install flow: plan (fetch into quarantine, load, scan) → commit (after approval,
copy into the install dir and record the lock) or discard.

:class:`Installer` installs skills; :class:`BaseInstaller` holds the flow shared with the
panel template installer (:mod:`nexflow.panels.install`).
"""

from __future__ import annotations

import datetime as dt
import re
import shutil
import tempfile
from abc import ABC, abstractmethod
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from nexflow.skills.install import sources
from nexflow.skills.install.errors import InstallError, NotApproved, NotInstalled, SourceError
from nexflow.skills.install.lock import Lock, LockEntry, differences, hash_tree, read_lock
from nexflow.skills.install.lock import write_lock as _write_lock
from nexflow.skills.install.model import Finding, InstalledSkill, InstallPlan
from nexflow.skills.install.quarantine import new_stage, remove_tree
from nexflow.skills.install.scan import scan_tree
from nexflow.skills.loader import SKILL_FILES, iter_skill_files, load_skill


@dataclass(frozen=True)
class Inspected:
    """What an installer learned about a fetched item before the scan."""

    name: str
    folder: Path
    description: str
    permissions: frozenset[str]
    version: str | None
    warnings: tuple[str, ...] = ()


def folder_name(name: str) -> str:
    """A safe folder name for ``name`` (lowercase, a-z 0-9 and hyphens)."""
    slug = re.sub(r"[^a-z0-9]+", "-", name.lower()).strip("-")
    return slug[:64] or "item"


def finding_keys(findings: tuple[Finding, ...]) -> tuple[str, ...]:
    """``rule@file`` per finding (line numbers move between versions; these do not)."""
    return tuple(sorted({f"{f.rule}@{f.file}" for f in findings}))


class BaseInstaller(ABC):
    """Plan, commit, discard, verify, remove and update for one kind of item."""

    section = "items"
    noun = "item"

    def __init__(
        self,
        *,
        install_dir: Path,
        lock_path: Path,
        quarantine_dir: Path,
        index: str | None = None,
    ) -> None:
        self.install_dir = install_dir
        self.lock_path = lock_path
        self.quarantine_dir = quarantine_dir
        self.index = index

    @abstractmethod
    def _inspect(self, content: Path, subdir: str, source: str) -> Inspected:
        """Find and read the item inside fetched ``content``; raise :class:`InstallError`."""

    def lock(self) -> Lock:
        return read_lock(self.lock_path, self.section)

    def plan(self, source: str, *, index: str | None = None) -> InstallPlan:
        """Fetch ``source`` into quarantine, read it and scan it. Installs nothing."""
        index = index or self.index
        source = sources.normalize(source, index=index)
        stage = new_stage(self.quarantine_dir, source.rstrip("/").rsplit("/", 1)[-1])
        try:
            fetched = sources.fetch(source, stage / "fetch", index=index)
            item = self._inspect(fetched.path, fetched.subdir, source)
            if fetched.expected is not None:
                sources.check_index_hashes(item.folder, fetched.expected, source)
            findings = scan_tree(item.folder, item.permissions)
        except BaseException:
            remove_tree(stage)
            raise
        return InstallPlan(
            name=item.name,
            source=source,
            staged=item.folder,
            declared_permissions=item.permissions,
            findings=findings,
            load_warnings=item.warnings,
            version=fetched.version or item.version,
            kind=fetched.kind,
            folder=folder_name(item.name),
            stage_root=stage,
            description=item.description,
            index=index if fetched.kind == "index" else None,
        )

    def discard(self, plan: InstallPlan) -> None:
        remove_tree(plan.stage_root or plan.staged)

    def commit(self, plan: InstallPlan, *, approved: bool = False) -> InstalledSkill:
        """Install a planned item. A flagged plan needs ``approved=True``."""
        if plan.flagged and not approved:
            worst = sum(f.severity in ("high", "medium") for f in plan.findings)
            raise NotApproved(
                f"{plan.name}: the scan found {worst} problem(s); not installed without "
                "explicit approval"
            )
        if not plan.staged.is_dir() and not plan.staged.is_file():
            raise InstallError(f"{plan.name}: the quarantined copy is gone (discarded?)")
        lock = self.lock()
        target = self.install_dir / plan.folder
        previous = lock.entries.get(plan.name)
        owner = next(
            (n for n, e in lock.entries.items() if (lock.path.parent / e.folder) == target), None
        )
        if target.exists() and owner is None:
            raise InstallError(
                f"{target} already exists and was not installed by Nexflow; "
                "move it away or remove it first"
            )
        if owner is not None and owner != plan.name:
            raise InstallError(f"{target} holds the installed {self.noun} {owner!r}")
        self._place(plan.staged, target)
        if previous is not None:
            old = lock.path.parent / previous.folder
            if old != target:
                remove_tree(old)
        installed_at = dt.datetime.now(dt.UTC).isoformat(timespec="seconds")
        entry = LockEntry(
            source=plan.source,
            kind=plan.kind,
            version=plan.version,
            installed_at=installed_at,
            folder=_relative(target, self.lock_path.parent),
            files=hash_tree(target),
            permissions=tuple(sorted(plan.declared_permissions)),
            approved_findings=finding_keys(plan.findings),
            index=plan.index,
        )
        _write_lock(lock.with_entry(plan.name, entry))
        self.discard(plan)
        return InstalledSkill(
            plan.name, target, plan.source, plan.version, installed_at, entry.files
        )

    def _place(self, staged: Path, target: Path) -> None:
        """Copy into a hidden sibling, then swap it in, so a watcher never sees half."""
        self.install_dir.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(prefix=f".{target.name}.", dir=self.install_dir))
        new = tmp / "new"
        try:
            if staged.is_dir():
                shutil.copytree(staged, new, symlinks=True)
            else:
                shutil.copy2(staged, new, follow_symlinks=False)
            if target.exists():
                target.rename(tmp / "old")
            new.rename(target)
        except OSError as e:
            raise InstallError(f"cannot install into {target}: {e}") from e
        finally:
            remove_tree(tmp)

    def verify(self, name: str | None = None) -> dict[str, list[str]]:
        """Per installed item, what differs from the lock (empty list: unchanged)."""
        lock = self.lock()
        names = [name] if name else sorted(lock.entries)
        report: dict[str, list[str]] = {}
        for item in names:
            if item not in lock.entries:
                raise NotInstalled(f"no installed {self.noun} named {item!r} in {lock.path}")
            report[item] = differences(lock.entries[item].files, lock.folder_of(item))
        return report

    def remove(self, name: str) -> Path:
        lock = self.lock()
        if name not in lock.entries:
            raise NotInstalled(f"no installed {self.noun} named {name!r} in {lock.path}")
        folder = lock.folder_of(name)
        remove_tree(folder)
        _write_lock(lock.without(name))
        return folder

    def plan_update(self, name: str) -> tuple[InstallPlan, LockEntry]:
        """A fresh plan from the recorded source, with the entry it would replace."""
        lock = self.lock()
        if name not in lock.entries:
            raise NotInstalled(f"no installed {self.noun} named {name!r} in {lock.path}")
        entry = lock.entries[name]
        plan = self.plan(entry.source, index=entry.index)
        if plan.name != name:
            self.discard(plan)
            raise InstallError(f"{entry.source} now holds {plan.name!r}, not {name!r}; not updated")
        return plan, entry


def _relative(path: Path, base: Path) -> str:
    try:
        return path.relative_to(base).as_posix()
    except ValueError:
        return str(path)


class Installer(BaseInstaller):
    """Installs skills into ``skills_dir`` and records them in ``lock_path``."""

    section = "skills"
    noun = "skill"

    def __init__(
        self,
        *,
        skills_dir: Path,
        lock_path: Path,
        quarantine_dir: Path,
        index: str | None = None,
    ) -> None:
        super().__init__(
            install_dir=skills_dir, lock_path=lock_path, quarantine_dir=quarantine_dir, index=index
        )
        self.skills_dir = skills_dir

    @classmethod
    def at_home(cls, home: Path, *, index: str | None = None) -> Installer:
        """The default layout: ``<home>/skills``, ``<home>/skills.lock``, ``<home>/quarantine``."""
        return cls(
            skills_dir=home / "skills",
            lock_path=home / "skills.lock",
            quarantine_dir=home / "quarantine" / "skills",
            index=index,
        )

    def _inspect(self, content: Path, subdir: str, source: str) -> Inspected:
        folder = _skill_folder(content, subdir, source)
        skill_file = next(folder / n for n in SKILL_FILES if (folder / n).is_file())
        skill = load_skill(skill_file)
        if skill.load_error:
            reason = skill.load_error.replace(str(content) + "/", "")
            raise InstallError(f"{source}: the skill does not load: {reason}")
        return Inspected(
            name=skill.name,
            folder=folder,
            description=skill.description,
            permissions=skill.permissions,
            version=skill.version,
            # The quarantine folder's name means nothing; the install folder is named
            # after the skill, and the loader warns again there if they still differ.
            warnings=tuple(w for w in skill.warnings if "differs from its folder" not in w),
        )


def source_path(content: Path, subdir: str, source: str) -> Path:
    """Where the ``#subdir`` of ``source`` points in its fetched ``content`` (``content``
    itself without one); ``SourceError`` unless it is a relative path inside."""
    if not subdir:
        return content
    pure = PurePosixPath(subdir)
    if pure.is_absolute() or ".." in pure.parts:
        raise SourceError(f"{source}: '#{subdir}' must be a relative path inside the source")
    return content.joinpath(*pure.parts)


def _skill_folder(content: Path, subdir: str, source: str) -> Path:
    content = source_path(content, subdir, source)
    if subdir and not content.is_dir():
        raise SourceError(f"{source}: no folder {subdir!r} in the source")
    if any((content / n).is_file() for n in SKILL_FILES):
        return content
    found = [p.parent for p in iter_skill_files(content, max_depth=4)]
    if len(found) == 1:
        return found[0]
    if not found:
        raise SourceError(f"{source}: no SKILL.md found")
    names = ", ".join(p.relative_to(content).as_posix() for p in found[:10])
    raise SourceError(
        f"{source} holds {len(found)} skills ({names}); pick one with {source}#<folder>"
    )
