"""Verified install of NXML panel templates: the skills install flow
(:mod:`nexflow.skills.install`) with a ``.nxml`` file as the item.

A source (a ``.nxml`` file, a folder holding one, a git URL, an archive or an index slug)
is fetched into quarantine, parsed and validated by the NXML parser (errors refuse it),
scanned with the text rules that apply to a template (injection text, hidden comments,
invisible characters, encoded blobs, credential paths, size), then installed as
``<id>.nxml`` and recorded in ``panels.lock`` with its sha256.
"""

from __future__ import annotations

from pathlib import Path

from nexflow.panels.ast import Capability
from nexflow.panels.errors import PanelError
from nexflow.panels.parser import parse
from nexflow.panels.validator import validate
from nexflow.skills.install import BaseInstaller, InstallError, SourceError
from nexflow.skills.install.installer import Inspected, folder_name, source_path
from nexflow.skills.install.model import InstallPlan

MAX_TEMPLATE_BYTES = 512 * 1024


class PanelInstaller(BaseInstaller):
    """Installs panel templates into ``templates_dir``, locked in ``lock_path``."""

    section = "panels"
    noun = "panel"

    def __init__(
        self,
        *,
        templates_dir: Path,
        lock_path: Path,
        quarantine_dir: Path,
        index: str | None = None,
    ) -> None:
        super().__init__(
            install_dir=templates_dir,
            lock_path=lock_path,
            quarantine_dir=quarantine_dir,
            index=index,
        )

    @classmethod
    def at_home(
        cls, home: Path, *, templates_dir: Path | None = None, index: str | None = None
    ) -> PanelInstaller:
        """``templates_dir`` (default ``<home>/panels``), ``<home>/panels.lock``."""
        return cls(
            templates_dir=templates_dir or home / "panels",
            lock_path=home / "panels.lock",
            quarantine_dir=home / "quarantine" / "panels",
            index=index,
        )

    def plan(self, source: str, *, index: str | None = None) -> InstallPlan:
        plan = super().plan(source, index=index)
        return _with_suffix(plan)

    def _inspect(self, content: Path, subdir: str, source: str) -> Inspected:
        file = _template_file(content, subdir, source)
        size = file.stat().st_size
        if size > MAX_TEMPLATE_BYTES:
            raise InstallError(
                f"{source}: {file.name} is {size // 1024} KB; templates are limited to "
                f"{MAX_TEMPLATE_BYTES // 1024} KB"
            )
        try:
            text = file.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as e:
            raise InstallError(f"{source}: cannot read {file.name}: {e}") from e
        try:
            panel = parse(text)
        except PanelError as e:
            raise InstallError(f"{source}: {file.name} is not valid NXML: {_lines(e)}") from e
        found = validate(panel)
        errors = [d for d in found if d.severity == "error"]
        if errors:
            shown = "; ".join(f"{file.name}:{d}" for d in errors[:5])
            raise InstallError(f"{source}: {file.name} does not validate: {shown}")
        permissions = frozenset(_capability(c) for c in panel.capabilities)
        return Inspected(
            name=panel.id,
            folder=file,
            description=panel.description or panel.title,
            permissions=permissions,
            version=panel.version,
            warnings=tuple(f"{file.name}:{d}" for d in found if d.severity != "error"),
        )


def _capability(cap: Capability) -> str:
    """A declared capability in the grant syntax (``http:<host>``, ``file:<path>``)."""
    if cap.kind == "file":
        return f"file:{cap.target} ({cap.mode or 'read'})"
    return f"{cap.kind}:{cap.target}" if cap.target else cap.kind


def _with_suffix(plan: InstallPlan) -> InstallPlan:
    from dataclasses import replace

    return replace(plan, folder=f"{folder_name(plan.name)}.nxml")


def _lines(error: PanelError) -> str:
    return "; ".join(str(d) for d in error.diagnostics[:5])


def _template_file(content: Path, subdir: str, source: str) -> Path:
    content = source_path(content, subdir, source)
    if content.is_file():
        return content
    if not content.is_dir():
        raise SourceError(f"{source}: no {subdir!r} in the source")
    found = sorted(p for p in content.rglob("*.nxml") if p.is_file() and not p.is_symlink())
    if len(found) == 1:
        return found[0]
    if not found:
        raise SourceError(f"{source}: no .nxml template found")
    names = ", ".join(p.relative_to(content).as_posix() for p in found[:10])
    raise SourceError(f"{source} holds {len(found)} templates ({names}); pick one with #<file>")
