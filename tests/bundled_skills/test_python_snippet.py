"""python-snippet through the real SkillRunner (every isolation level) and the gateway."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
from bundled_support import LEVELS, call_skill, refusal, run_skill, tool_json

from nexflow.skills import SkillInputInvalid
from nexflow.skills.isolation import IsolationLevel
from nexflow.testing.harness import GatewayHarness


async def test_prints_and_reads_the_workspace(workspace: Path, level: IsolationLevel) -> None:
    (workspace / "data.csv").write_text("a,b\n1,2\n3,4\n")
    code = (
        "import csv, os\n"
        "rows = list(csv.reader(open('data.csv')))\n"
        "print(len(rows), sum(int(r[1]) for r in rows[1:]))\n"
        "print(os.getcwd())\n"
        "open('made.txt', 'w').write('by snippet')\n"
    )
    r = await run_skill("python-snippet", {"code": code}, workspace, level=level)
    assert r.ok, r.error
    assert r.data["stdout"] == f"3 6\n{workspace}\n"
    assert r.data["exit_code"] == 0 and r.data["truncated"] is False
    assert (workspace / "made.txt").read_text() == "by snippet"


async def test_error_exit_and_stderr_tail(workspace: Path) -> None:
    r = await run_skill("python-snippet", {"code": "print('before')\n1/0"}, workspace)
    assert r.ok  # the skill worked; the snippet failed
    assert r.data["stdout"] == "before\n" and r.data["exit_code"] == 1
    assert r.data["stderr_tail"].rstrip().endswith("ZeroDivisionError: division by zero")


async def test_stdin_is_empty_and_isolated_mode(workspace: Path) -> None:
    code = "import sys\nprint(repr(sys.stdin.read()), sys.flags.isolated, '' in sys.path)"
    r = await run_skill("python-snippet", {"code": code}, workspace)
    assert r.data["stdout"] == "'' 1 False\n"


async def test_a_loop_is_killed_at_the_timeout(workspace: Path, level: IsolationLevel) -> None:
    started = time.monotonic()
    code = "print('tick', flush=True)\nwhile True: pass"
    r = await run_skill("python-snippet", {"code": code, "timeout_sec": 1}, workspace, level=level)
    assert time.monotonic() - started < 10
    assert not r.ok and r.exit_code == 1
    assert "still running after 1 s and was killed" in r.stderr_tail
    assert "tick" in r.stderr_tail


async def test_huge_output_is_cut(workspace: Path) -> None:
    r = await run_skill("python-snippet", {"code": "while True: print('x' * 999)"}, workspace)
    assert r.ok and r.data["truncated"] is True
    assert len(r.data["stdout"]) == 64 * 1024
    assert "64 KB" in r.data["note"]


async def test_no_network_in_the_sandbox(workspace: Path) -> None:
    sandboxed = [lv for lv in LEVELS if lv is not IsolationLevel.NONE]
    if not sandboxed:
        pytest.fail("no sandbox on this host: the network cannot be confined")
    code = (
        "import socket\n"
        "s = socket.socket()\n"
        "s.settimeout(2)\n"
        "try:\n"
        "    s.connect(('1.1.1.1', 53)); print('connected')\n"
        "except OSError as e:\n"
        "    print('blocked', e.errno)\n"
    )
    r = await run_skill("python-snippet", {"code": code}, workspace, level=sandboxed[0])
    assert r.data["stdout"].startswith("blocked")


@pytest.mark.parametrize(
    ("payload", "why"),
    [
        ({"code": "   "}, "'code' must be a non-empty string"),
        ({"code": "x" * 20_001}, "'code' is 20001 characters; the limit is 20000"),
        ({"code": "print(1)", "timeout_sec": -1}, "'timeout_sec' must be a positive number"),
    ],
)
async def test_bad_input_is_refused(workspace: Path, payload: dict[str, object], why: str) -> None:
    r = await run_skill("python-snippet", payload, workspace)
    assert f"python-snippet: refused: {why}" in refusal(r)


async def test_schema_rejects_unknown_fields(workspace: Path) -> None:
    with pytest.raises(SkillInputInvalid):
        await run_skill("python-snippet", {"code": "1", "shell": True}, workspace)


async def test_through_the_gateway(gateway: GatewayHarness) -> None:
    assert gateway.app is not None
    level = await gateway.app.skills.runner.isolation_level()
    confined = level is not IsolationLevel.NONE
    code = "import math\nprint(math.factorial(20))"
    # Confined: it runs at once; unconfined, `filesystem` makes it wait for the user.
    reply, tool_msg, card = await call_skill(
        gateway, "python-snippet", {"code": code}, approve=None if confined else True
    )
    assert (card is None) == confined
    assert tool_json(tool_msg)["stdout"] == "2432902008176640000\n"
    assert reply["reply"]  # the scripted model answered after the tool result
