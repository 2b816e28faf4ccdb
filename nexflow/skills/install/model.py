"""What a plan, a finding and an installed item look like."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

Severity = Literal["high", "medium", "low"]
SEVERITY_ORDER: Mapping[str, int] = {"high": 0, "medium": 1, "low": 2}


@dataclass(frozen=True)
class Finding:
    """One scan result: ``file`` is relative to the staged folder, ``line`` is 1-based."""

    rule: str
    severity: Severity
    file: str
    line: int | None
    message: str

    def render(self) -> str:
        where = f"{self.file}:{self.line}" if self.line else self.file
        return f"{self.severity:<6} {self.rule:<20} {where}: {self.message}"


@dataclass(frozen=True)
class InstallPlan:
    """A fetched, loaded and scanned item waiting in quarantine; nothing is installed yet.

    ``staged`` is the item's folder in quarantine. ``flagged`` is true when any finding is
    high or medium: such a plan is committed only with explicit approval.
    """

    name: str
    source: str
    staged: Path
    declared_permissions: frozenset[str]
    findings: tuple[Finding, ...]
    load_warnings: tuple[str, ...] = ()
    version: str | None = None
    kind: str = "folder"
    folder: str = ""
    """The folder name the item gets in the install dir."""
    stage_root: Path | None = None
    """The quarantine folder to delete on commit or discard (``staged`` or a parent)."""
    description: str = ""
    index: str | None = None
    """For a slug: the index it was looked up in (recorded, so ``update`` finds it)."""

    @property
    def flagged(self) -> bool:
        return any(f.severity in ("high", "medium") for f in self.findings)


@dataclass(frozen=True)
class InstalledSkill:
    """An item that was installed and recorded in the lock."""

    name: str
    path: Path
    source: str
    version: str | None
    installed_at: str
    files: Mapping[str, str] = field(default_factory=dict)
    """Relative path → sha256 of every file installed."""
