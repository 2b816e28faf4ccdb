"""A skill never hands a Python traceback to the model or the user: the failed run says
the exception's last line, the traceback goes to the log. Real subprocesses; the bundled
file-read with a NUL byte in its path (it used to crash with one); ``nexflow skills run``
with bad input."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from skills_support import BUNDLED, MakeSkill, runner_for
from structlog.testing import capture_logs

from nexflow.skills import IsolationLevel, RunSkillTool, SkillRegistry, load_skill
from nexflow.skills.eligibility import HostContext, evaluate
from nexflow.skills.model import Skill
from nexflow.skills.result import split_traceback
from nexflow.tools.base import ToolContext

BUGGY = """
import json, sys
args = json.load(sys.stdin)
print("buggy: reading", args["path"], file=sys.stderr)
def load(path):
    open(path)
load(args["path"])
"""

CHAINED = """
import sys
try:
    {}["missing"]
except KeyError as exc:
    raise RuntimeError("lookup failed") from exc
"""

ON_STDOUT = """
import sys, traceback
print("partial result")
try:
    1 / 0
except ZeroDivisionError:
    traceback.print_exc(file=sys.stdout)
sys.exit(3)
"""


def ready(path: Path) -> Skill:
    skill = evaluate(load_skill(path), HostContext())
    assert skill.available, skill.reason
    return skill


def no_traceback(*texts: str | None) -> None:
    for text in texts:
        assert text is not None
        assert "Traceback" not in text and 'File "' not in text, text


async def test_a_crashing_skill_reports_the_exceptions_last_line_only(
    make_skill: MakeSkill, workspace: Path, level: IsolationLevel
) -> None:
    skill = ready(make_skill("buggy", script=BUGGY, script_name="main.py"))
    with capture_logs() as logs:
        result = await runner_for(level).run(skill, {"path": "a\0b"}, workspace=workspace)
    assert not result.ok and result.exit_code == 1
    assert result.error == "ValueError: embedded null byte (exited with status 1)"
    assert result.stderr_tail == "buggy: reading a\x00b"  # what it said before the crash
    no_traceback(result.output, result.stderr_tail, result.error)
    no_traceback(json.dumps(result.to_json()))  # the HTTP API's body
    [logged] = [e for e in logs if e["event"] == "skill_traceback"]
    assert logged["log_level"] == "warning" and logged["skill"] == "buggy"
    assert logged["traceback"].startswith("Traceback (most recent call last):")
    assert "in load\n    open(path)" in logged["traceback"]


async def test_the_model_sees_no_traceback_through_run_skill(
    make_skill: MakeSkill, workspace: Path, tmp_path: Path
) -> None:
    make_skill("buggy", script=BUGGY, script_name="main.py")
    registry = SkillRegistry([tmp_path / "skills"])
    registry.reload()
    tool = RunSkillTool(
        registry, runner_for(IsolationLevel.NONE), workspace_for=lambda _ctx: workspace
    )
    ctx = ToolContext("u1", "s1", "web", "c1", permissions=frozenset({"filesystem"}))
    with capture_logs():
        result = await tool.run({"name": "buggy", "input": {"path": "x\0y"}}, ctx)
    assert result.is_error
    assert "failed: ValueError: embedded null byte (exited with status 1)" in result.content
    no_traceback(result.content)


async def test_a_chained_traceback_ends_with_the_final_exception(
    make_skill: MakeSkill, workspace: Path
) -> None:
    skill = ready(make_skill("chained", script=CHAINED, script_name="main.py"))
    with capture_logs():
        result = await runner_for(IsolationLevel.NONE).run(skill, {}, workspace=workspace)
    assert result.error == "RuntimeError: lookup failed (exited with status 1)"
    assert result.stderr_tail == ""
    no_traceback(result.stderr_tail)


async def test_a_traceback_printed_on_stdout_is_cut_from_the_output(
    make_skill: MakeSkill, workspace: Path
) -> None:
    skill = ready(make_skill("stdout", script=ON_STDOUT, script_name="main.py"))
    with capture_logs() as logs:
        result = await runner_for(IsolationLevel.NONE).run(skill, {}, workspace=workspace)
    assert result.error == "ZeroDivisionError: division by zero (exited with status 3)"
    assert result.output == "partial result"
    assert [e["stream"] for e in logs if e["event"] == "skill_traceback"] == ["stdout"]


def test_a_tail_that_lost_the_header_is_still_recognised() -> None:
    tail = '  File "/x/main.py", line 3, in <module>\n    boom()\nOSError: [Errno 5] I/O error\n'
    found = split_traceback("before\n" + tail)
    assert found == ("before", tail, "OSError: [Errno 5] I/O error")
    assert split_traceback("file-read: 'x' is not a file\n") is None


async def test_a_successful_run_keeps_its_stderr(make_skill: MakeSkill, workspace: Path) -> None:
    """Only failed runs are cleaned: a skill may log a handled exception and succeed."""
    script = "import sys, traceback\ntry:\n    1/0\nexcept Exception:\n    traceback.print_exc()\n"
    skill = ready(make_skill("handled", script=script, script_name="main.py"))
    result = await runner_for(IsolationLevel.NONE).run(skill, {}, workspace=workspace)
    assert result.ok and "ZeroDivisionError" in result.stderr_tail


@pytest.mark.parametrize(
    ("path", "why"),
    [
        ("a\0b", "'a\\x00b' is not a valid path (it contains a NUL byte)"),
        ("x" * 5000, "File name too long"),
        ("missing.txt", "'missing.txt' is not a file"),
    ],
)
async def test_bundled_file_read_explains_bad_paths(
    workspace: Path, level: IsolationLevel, path: str, why: str
) -> None:
    skill = ready(BUNDLED / "file-read" / "SKILL.md")
    with capture_logs() as logs:
        result = await runner_for(level).run(skill, {"path": path}, workspace=workspace)
    assert not result.ok and result.exit_code == 2
    assert result.stderr_tail.startswith("file-read: ") and why in result.stderr_tail
    no_traceback(result.stderr_tail, result.output)
    assert not [e for e in logs if e["event"] == "skill_traceback"]  # no crash at all


def cli(tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("NEXFLOW_")}
    env.update({"NEXFLOW_HOME": str(tmp_path / "home"), "NEXFLOW_LLM__OLLAMA__PROBE": "false"})
    return subprocess.run(
        [sys.executable, "-m", "nexflow", "skills", "run", *args],
        capture_output=True,
        text=True,
        env=env,
        cwd=tmp_path,
        timeout=60,
        check=False,
    )


@pytest.mark.parametrize(
    ("given", "says"),
    [
        ("{not json", "--input is not JSON"),
        ('["README.md"]', "--input must be a JSON object"),
        ('{"path": 5}', "input for 'file-read'"),  # the skill's input schema
    ],
)
def test_skills_run_with_bad_input_exits_2_with_a_clear_error(
    tmp_path: Path, given: str, says: str
) -> None:
    out = cli(tmp_path, "file-read", "--input", given)
    assert out.returncode == 2, out.stderr
    assert says in out.stderr
    assert "Traceback" not in out.stderr and out.stdout == ""


def test_skills_run_reports_a_failing_skill_without_a_traceback(tmp_path: Path) -> None:
    out = cli(tmp_path, "file-read", "--input", json.dumps({"path": "a\0b"}), "--yes")
    assert out.returncode == 1
    assert "failed: exited with status 2" in out.stderr
    assert "file-read: 'a\\x00b' is not a valid path (it contains a NUL byte)" in out.stderr
    assert "Traceback" not in out.stderr
