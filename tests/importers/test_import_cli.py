"""``nexflow import`` through the real command line entry point."""

from __future__ import annotations

from pathlib import Path

import pytest
from importers_support import HOMES, snapshot

from nexflow.cli import main


@pytest.fixture
def env(home: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("NEXFLOW_HOME", str(home))
    monkeypatch.delenv("NEXFLOW_CONFIG", raising=False)
    return home


def test_dry_run_prints_the_table_and_changes_nothing(
    env: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code = main(["import", "hermes", str(HOMES / "hermes"), "--dry-run"])
    out, err = capsys.readouterr()
    assert code == 0, err
    assert out.splitlines()[2].split() == ["ITEM", "SOURCE", "DESTINATION", "STATUS", "REASON"]
    assert "would import" in out and "note: dry run: nothing was changed" in out
    assert snapshot(env) == {}


def test_import_exit_code_says_something_failed(
    env: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code = main(["import", "openclaw", str(HOMES / "openclaw")])
    out, err = capsys.readouterr()
    assert code == 1
    assert "flagged" in out and "nexflow skills install" in out
    assert "Traceback" not in out + err
    assert (env / "config.yml").is_file()


def test_not_a_source_home(env: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code = main(["import", "nanobot", str(tmp_path / "nowhere")])
    _, err = capsys.readouterr()
    assert code == 2
    assert err.startswith("nexflow: ") and "is not a folder" in err
    assert "Traceback" not in err
