"""Helpers for the importer tests: the source homes under ``homes/`` (built from the
tools' documented layouts), a target Nexflow home, snapshots."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

from nexflow.importers import Report, Target, read_source, run_import

HOMES = Path(__file__).parent / "homes"
NOW = datetime(2026, 12, 5, 12, 0, tzinfo=UTC)


def target_for(home: Path) -> Target:
    return Target(
        home=home,
        workspace=home / "workspace",
        config_path=home / "config.yml",
        secrets_path=home / "secrets.env",
        db_path=home / "nexflow.db",
    )


async def run(tool: str, source_dir: Path, home: Path, *, dry_run: bool = False) -> Report:
    return await run_import(
        read_source(tool, source_dir), target_for(home), dry_run=dry_run, now=NOW, default_tz=UTC
    )


def snapshot(root: Path, *, skip: tuple[str, ...] = ()) -> dict[str, tuple[int, bytes]]:
    """Every file under ``root``: its mode and bytes (folders included, as empty)."""
    out: dict[str, tuple[int, bytes]] = {}
    for path in sorted(root.rglob("*")):
        rel = path.relative_to(root).as_posix()
        if rel.startswith(skip):
            continue
        mode = path.stat().st_mode
        out[rel] = (mode, path.read_bytes() if path.is_file() else b"")
    return out


def rows_of(report: Report, kind: str) -> dict[str, str]:
    """item → status for one kind of row."""
    return {r.item: r.status for r in report.rows if r.kind == kind}
