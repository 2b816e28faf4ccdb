"""``nexflow import openclaw|nanobot|hermes DIR [--dry-run] [--config FILE]``.

Exit codes: 0 done (flagged skills and skipped items are reported, not errors), 1 some
item failed or conflicted, 2 bad arguments or no such source, 78 the Nexflow
configuration is unusable.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from pathlib import Path

from nexflow.importers.errors import ImporterError, SourceNotFound
from nexflow.importers.report import render
from nexflow.importers.runner import Target, run_import
from nexflow.importers.sources import SOURCES, read_source


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="nexflow import",
        description="Move skills, persona, memory, cron jobs and channel settings from "
        "another agent into Nexflow (docs/import.md).",
    )
    parser.add_argument("tool", choices=sorted(SOURCES), help="the agent to import from")
    parser.add_argument("dir", nargs="?", help="its home folder (default ~/.<tool>)")
    parser.add_argument(
        "--dry-run", action="store_true", help="show what would move; change nothing"
    )
    parser.add_argument("--config", help="Nexflow config file (default as for nexflow serve)")
    return parser


def main_import(argv: list[str]) -> int:
    args = build_parser().parse_args(argv)
    from nexflow.cli import _config_path, load_or_exit

    config_path = _config_path(args.config)
    config = load_or_exit(args.config)
    root = Path(args.dir or f"~/.{args.tool}").expanduser()
    try:
        source = read_source(args.tool, root)
    except SourceNotFound as e:
        print(f"nexflow: {e.message}", file=sys.stderr)
        return 2
    try:
        report = asyncio.run(
            run_import(source, Target.from_config(config, config_path), dry_run=args.dry_run)
        )
    except ImporterError as e:
        print(f"nexflow: {e.message}", file=sys.stderr)
        return 1
    sys.stdout.write(render(report))
    return 0 if report.ok else 1
