"""Verified install of skills (and, through :class:`BaseInstaller`, panel templates).

``plan`` fetches a source (folder, git URL, archive or index slug) into quarantine, loads
it and scans it; ``commit`` installs it (a flagged plan only with approval) and records
the sha256 of every file in the lock; ``discard`` drops the quarantined copy. A locked
skill whose files change is refused at load (:func:`lock_problems`) and by ``verify``.

Exceptions (``message`` is safe to show the user; all are :class:`SkillError`)::

    InstallError
    ├── SourceError        cannot fetch: no folder, git failed, bad archive or index
    │   ├── UnsafeArchive  zip slip, absolute path, link or device in an archive
    │   └── IndexMismatch  a fetched file does not match the index's sha256
    ├── NotApproved        a flagged plan committed without approval
    └── NotInstalled       no such name in the lock
"""

from nexflow.skills.install.errors import (
    IndexMismatch,
    InstallError,
    NotApproved,
    NotInstalled,
    SourceError,
    UnsafeArchive,
)
from nexflow.skills.install.installer import BaseInstaller, Installer
from nexflow.skills.install.lock import Lock, LockEntry, read_lock
from nexflow.skills.install.model import Finding, InstalledSkill, InstallPlan
from nexflow.skills.install.scan import RULES, Rule, scan_tree

__all__ = [
    "RULES",
    "BaseInstaller",
    "Finding",
    "IndexMismatch",
    "InstallError",
    "InstallPlan",
    "InstalledSkill",
    "Installer",
    "Lock",
    "LockEntry",
    "NotApproved",
    "NotInstalled",
    "Rule",
    "SourceError",
    "UnsafeArchive",
    "read_lock",
    "scan_tree",
]
