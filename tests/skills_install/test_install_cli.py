"""``nexflow skills install | verify | update | remove | list --source | run``: approval
rules, exit codes, and one-line errors instead of tracebacks."""

from __future__ import annotations

import io
import json
import os
from pathlib import Path

import pytest
from install_support import FIXTURES

from nexflow.skills.cli import main_skills
from nexflow.skills.install import cli as install_cli


@pytest.fixture
def env_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    for key in list(os.environ):
        if key.startswith("NEXFLOW_"):
            monkeypatch.delenv(key)
    home = tmp_path / "home"
    monkeypatch.setenv("NEXFLOW_HOME", str(home))
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr("sys.stdin", io.StringIO(""))  # no terminal
    return home


def installed(home: Path) -> set[str]:
    lock = home / "skills.lock"
    return set(json.loads(lock.read_text())["skills"]) if lock.exists() else set()


def test_no_terminal_and_no_yes_refuses_and_says_why(
    env_home: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main_skills(["install", str(FIXTURES / "clean")]) == 1
    out = capsys.readouterr()
    assert "skill 'word-count' from" in out.out and "findings:    none" in out.out
    assert "no terminal to ask for approval" in out.err and "--yes" in out.err
    assert installed(env_home) == set()
    assert not (env_home / "skills").exists()


def test_install_yes_then_verify_tamper_list_remove(
    env_home: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main_skills(["install", str(FIXTURES / "clean"), "--yes"]) == 0
    assert "installed word-count into" in capsys.readouterr().out
    assert main_skills(["verify"]) == 0
    assert "ok       word-count" in capsys.readouterr().out
    script = env_home / "skills" / "word-count" / "scripts" / "count.py"
    script.write_text("print('changed')\n")
    assert main_skills(["verify"]) == 1
    out = capsys.readouterr().out
    assert "CHANGED  word-count" in out
    assert "file scripts/count.py changed since install (sha256" in out
    assert main_skills(["remove", "word-count"]) == 0
    assert installed(env_home) == set()


def test_list_source_says_where_each_skill_came_from(
    env_home: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    # Installed skills live in <home>/skills; a root points at it here (see the report:
    # the composition root should add it for everyone).
    monkeypatch.setenv("NEXFLOW_SKILLS_DIRS", str(env_home / "skills"))
    assert main_skills(["install", str(FIXTURES / "clean"), "--yes"]) == 0
    capsys.readouterr()
    assert main_skills(["list", "--source"]) == 0
    lines = capsys.readouterr().out.splitlines()

    def source_of(name: str) -> str:
        index = next(i for i, ln in enumerate(lines) if f" {name}: " in ln)
        return lines[index + 1]

    assert f"installed from {FIXTURES / 'clean'} 1.2.0" in source_of("word-count")
    assert source_of("reminder").strip() == "source: bundled"


def test_flagged_skill_with_yes_is_installed_and_says_so(
    env_home: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main_skills(["install", str(FIXTURES / "pipe-to-shell"), "--yes"]) == 0
    out = capsys.readouterr().out
    assert "high   pipe-to-shell        SKILL.md:13" in out
    assert "approved with --yes despite the findings" in out
    assert installed(env_home) == {"fast-setup"}


def test_flagged_skill_at_a_terminal_needs_its_name_typed(
    env_home: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    answers = iter(["y", "note-sorter"])
    prompts: list[str] = []

    def ask(prompt: str) -> str:
        prompts.append(prompt)
        return next(answers)

    monkeypatch.setattr(install_cli, "terminal_ask", lambda: ask)
    assert main_skills(["install", str(FIXTURES / "hidden-network")]) == 1
    assert installed(env_home) == set()
    assert main_skills(["install", str(FIXTURES / "hidden-network")]) == 0
    assert installed(env_home) == {"note-sorter"}
    assert "Type its name" in prompts[0]
    out = capsys.readouterr().out
    assert "declares:    filesystem" in out and "scan saw:    network" in out


def test_clean_skill_at_a_terminal_asks_yes_no(
    env_home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(install_cli, "terminal_ask", lambda: lambda prompt: "n")
    assert main_skills(["install", str(FIXTURES / "clean")]) == 1
    monkeypatch.setattr(install_cli, "terminal_ask", lambda: lambda prompt: "y")
    assert main_skills(["install", str(FIXTURES / "clean")]) == 0


def test_update_shows_the_diff(
    env_home: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    import shutil

    source = tmp_path / "src"
    shutil.copytree(FIXTURES / "clean", source)
    assert main_skills(["install", str(source), "--yes"]) == 0
    (source / "scripts" / "count.py").write_text("import socket\n")
    capsys.readouterr()
    assert main_skills(["update", "word-count"]) == 1  # no terminal, no --yes
    assert main_skills(["update", "word-count", "--yes"]) == 0
    out = capsys.readouterr().out
    assert "new finding: undeclared-network@scripts/count.py" in out
    assert "files changed or added: 1, removed: 0" in out
    assert main_skills(["verify", "word-count"]) == 0


@pytest.mark.parametrize(
    ("argv", "message", "code"),
    [
        (["install", "/nonexistent/skill"], "nexflow: no such folder or archive", 1),
        (["install", "some-slug"], "give an index", 1),
        (["verify", "ghost"], "no installed skill named 'ghost'", 1),
        (["remove", "ghost"], "no installed skill named 'ghost'", 1),
        (["update", "ghost"], "no installed skill named 'ghost'", 1),
        (["run", "ghost"], "no skill named 'ghost'", 1),
        (["run", "reminder", "--input", "{nope"], "--input is not JSON", 2),
        (["run", "reminder", "--input", "[1]"], "--input must be a JSON object", 2),
    ],
)
def test_bad_input_is_one_line_never_a_traceback(
    env_home: Path,
    capsys: pytest.CaptureFixture[str],
    argv: list[str],
    message: str,
    code: int,
) -> None:
    assert main_skills(argv) == code
    err = capsys.readouterr().err
    assert message in err
    assert "Traceback" not in err


def test_missing_arguments_are_usage_errors(
    env_home: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as exc:
        main_skills(["install"])
    assert exc.value.code == 2
    err = capsys.readouterr().err
    assert "the following arguments are required: source" in err and "Traceback" not in err


def test_run_of_an_instructions_only_skill_explains_it(
    env_home: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main_skills(["run", "reminder"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("⏰ reminder: Set, list and cancel reminders")
    assert "has no program to run" in out
    assert "When to use it:" in out and "Remind me in 20 minutes" in out
