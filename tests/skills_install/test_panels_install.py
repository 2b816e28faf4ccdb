"""Verified install of NXML panel templates: ``panels.lock``, the NXML parser as the
loader, the text scan rules, and ``nexflow panels install | verify | remove``."""

from __future__ import annotations

import io
import json
import os
from pathlib import Path

import pytest
from install_support import FIXTURES

from nexflow.panels.cli import main_panels
from nexflow.panels.install import PanelInstaller
from nexflow.skills.install import InstallError, NotApproved


@pytest.fixture
def panels(home: Path) -> PanelInstaller:
    return PanelInstaller.at_home(home)


def test_clean_template_installs_and_verifies(panels: PanelInstaller, home: Path) -> None:
    plan = panels.plan(str(FIXTURES / "panel-clean" / "todo.nxml"))
    assert plan.name == "todo" and plan.version == "1" and not plan.flagged
    assert plan.folder == "todo.nxml"
    done = panels.commit(plan)
    assert done.path == home / "panels" / "todo.nxml"
    lock = json.loads((home / "panels.lock").read_text())
    assert set(lock["panels"]["todo"]["files"]) == {"todo.nxml"}
    assert panels.verify() == {"todo": []}
    done.path.write_text(done.path.read_text().replace("To-do", "Pwned"))
    assert panels.verify()["todo"][0].startswith("file todo.nxml changed since install")


def test_a_folder_holding_one_template(panels: PanelInstaller) -> None:
    plan = panels.plan(str(FIXTURES / "panel-clean"))
    assert plan.name == "todo"
    panels.discard(plan)


def test_injection_in_a_template_is_flagged(panels: PanelInstaller, home: Path) -> None:
    plan = panels.plan(str(FIXTURES / "panel-injection"))
    assert plan.flagged
    assert {(f.rule, f.file, f.line) for f in plan.findings} == {
        ("prompt-injection", "todo.nxml", 1),
        ("hidden-instructions", "todo.nxml", 1),
    }
    with pytest.raises(NotApproved):
        panels.commit(plan)
    panels.discard(plan)
    assert not (home / "panels").exists()


def test_invalid_nxml_is_refused_with_its_line(panels: PanelInstaller, tmp_path: Path) -> None:
    bad = tmp_path / "bad.nxml"
    bad.write_text(
        '<NexusPanel id="x" title="X">\n  <View>\n    <Nope/>\n  </View>\n</NexusPanel>\n'
    )
    with pytest.raises(InstallError, match=r"bad\.nxml does not validate: bad\.nxml:3:"):
        panels.plan(str(bad))
    (tmp_path / "worse.nxml").write_text("<NexusPanel")
    with pytest.raises(InstallError, match=r"worse\.nxml is not valid NXML: 1:"):
        panels.plan(str(tmp_path / "worse.nxml"))


def test_capabilities_are_the_declared_permissions(panels: PanelInstaller, tmp_path: Path) -> None:
    text = (FIXTURES / "panel-clean" / "todo.nxml").read_text()
    head, rest = text.split("\n", 1)
    caps = '<Capabilities><Http host="api.example.com" /><File path="notes/" /></Capabilities>'
    (tmp_path / "todo.nxml").write_text(f"{head}\n{caps}\n{rest}")
    plan = panels.plan(str(tmp_path / "todo.nxml"))
    assert plan.declared_permissions == {"http:api.example.com", "file:notes/ (read)"}
    panels.discard(plan)


def test_panels_cli(
    home: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    for key in list(os.environ):
        if key.startswith("NEXFLOW_"):
            monkeypatch.delenv(key)
    monkeypatch.setenv("NEXFLOW_HOME", str(home))
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr("sys.stdin", io.StringIO(""))
    source = str(FIXTURES / "panel-clean" / "todo.nxml")
    assert main_panels(["install", source]) == 1
    assert "no terminal to ask for approval" in capsys.readouterr().err
    assert main_panels(["install", source, "--yes"]) == 0
    assert (home / "panels" / "todo.nxml").is_file()
    assert main_panels(["verify"]) == 0
    (home / "panels" / "todo.nxml").write_text("<NexusPanel/>")
    assert main_panels(["verify"]) == 1
    assert "CHANGED  todo" in capsys.readouterr().out
    assert main_panels(["remove", "todo"]) == 0
    assert not (home / "panels" / "todo.nxml").exists()
    assert main_panels(["remove", "todo"]) == 1
    assert "no installed panel named 'todo'" in capsys.readouterr().err
    assert main_panels(["validate", source]) == 0  # the existing command still works
