from __future__ import annotations

import json
from pathlib import Path

import pytest

from nexflow.cli import main
from nexflow.panels.cli import main_panels

REPO = Path(__file__).resolve().parents[2]


def test_validate_bundled_panels(capsys: pytest.CaptureFixture[str]) -> None:
    files = sorted(str(p) for p in (REPO / "panels").glob("*.nxml"))
    assert main_panels(["validate", *files]) == 0
    out = capsys.readouterr().out
    assert "server-monitor.nxml: ok" in out


def test_validate_reports_line_column_and_hint(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    bad = tmp_path / "bad.nxml"
    bad.write_text(
        '<NexusPanel id="x" title="X">\n'
        '<View><Metric label="a" value="{$state.nope}" /></View>\n'
        "</NexusPanel>"
    )
    assert main(["panels", "validate", str(bad)]) == 1
    out = capsys.readouterr().out
    assert f"{bad}:2:" in out
    assert "undeclared state 'nope'" in out
    assert "hint:" in out
    assert main_panels(["validate", "--json", str(bad)]) == 1
    report = json.loads(capsys.readouterr().out)
    assert report[0]["ok"] is False
    assert report[0]["diagnostics"][0]["code"] == "unknown-state"


def test_validate_missing_file(tmp_path: Path) -> None:
    assert main_panels(["validate", str(tmp_path / "nope.nxml")]) == 2
