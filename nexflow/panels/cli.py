"""``nexflow panels validate FILE...``: parse, validate and lay out NXML files; and the
verified install commands (``install | verify | update | remove``, see
:mod:`nexflow.panels.install_cli`).

Prints one line per finding (``file:line:column: severity[code] message (hint: ...)``),
parser and validator findings first, then LayoutEngine warnings. Exit status: 0 when
no file has errors, 1 when one has, 2 when a file cannot be read.
``--json`` prints ``[{"file", "ok", "diagnostics": [...]}]`` instead.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from nexflow.panels import Diagnostic, LayoutEngine, PanelError, install_cli, parse, validate


def _check(text: str) -> list[Diagnostic]:
    try:
        panel = parse(text)
    except PanelError as exc:
        return list(exc.diagnostics)
    found = list(validate(panel))
    if not any(d.severity == "error" for d in found):
        found.extend(LayoutEngine().layout(panel).warnings)
    return found


def _validate(args: argparse.Namespace) -> int:
    status = 0
    report: list[dict[str, Any]] = []
    for name in args.files:
        path = Path(name)
        try:
            text = path.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            print(f"{name}: cannot read: {exc}", file=sys.stderr)
            status = 2
            continue
        found = _check(text)
        ok = not any(d.severity == "error" for d in found)
        status = max(status, 0 if ok else 1)
        if args.json:
            report.append({"file": name, "ok": ok, "diagnostics": [d.model_dump() for d in found]})
            continue
        for d in found:
            print(f"{name}:{d}")
        errors = sum(d.severity == "error" for d in found)
        warnings = len(found) - errors
        verdict = "ok" if ok else "invalid"
        print(f"{name}: {verdict} ({errors} error(s), {warnings} warning(s))")
    if args.json:
        print(json.dumps(report, indent=2))
    return status


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="nexflow panels", description="NXML panel tools.")
    sub = parser.add_subparsers(dest="command", required=True)
    validate_cmd = sub.add_parser("validate", help="check NXML files; exit 1 on errors")
    validate_cmd.add_argument("files", nargs="+", metavar="FILE")
    validate_cmd.add_argument("--json", action="store_true", help="machine-readable output")
    validate_cmd.set_defaults(func=_validate)
    install_cli.add_commands(sub)  # install | verify | update | remove
    return parser


def main_panels(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    installed = install_cli.run(args)
    return installed if installed is not None else int(args.func(args))


if __name__ == "__main__":
    sys.exit(main_panels())
