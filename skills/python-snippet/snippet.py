"""python-snippet: run a short Python snippet and return its output, capped in time and size.

The snippet runs in a child ``python3 -I`` (isolated mode: no user site, no PYTHON*
variables, the current directory not on ``sys.path``) with an empty stdin, the workspace
as its working directory and its own process group, which is killed at the deadline.
The sandbox the gateway puts around this program (no network, a read-only filesystem
except the workspace) applies to the snippet too.
"""

import os
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "_lib"))
import prockit
import skillkit

MAX_CODE = 20_000
TIMEOUT_DEFAULT = 10.0
TIMEOUT_LIMIT = 25.0
STDOUT_CAP = 64 * 1024
STDERR_TAIL = 4 * 1024


def settings(args):
    code = args.get("code")
    if not isinstance(code, str) or not code.strip():
        raise skillkit.Refused("'code' must be a non-empty string of Python")
    if len(code) > MAX_CODE:
        raise skillkit.Refused(f"'code' is {len(code)} characters; the limit is {MAX_CODE}")
    if "\0" in code:
        raise skillkit.Refused("'code' contains a NUL character")
    timeout = skillkit.positive_number(args, "timeout_sec", TIMEOUT_DEFAULT, most=TIMEOUT_LIMIT)
    return code, timeout


def run(args):
    code, timeout = settings(args)
    env = {"PATH": os.environ.get("PATH", os.defpath), "LANG": "C.UTF-8", "HOME": os.getcwd()}
    got = prockit.capture(
        [sys.executable, "-I", "-c", code],
        timeout=timeout,
        stdout_cap=STDOUT_CAP,
        stderr_tail=STDERR_TAIL,
        env=env,
    )
    if got.timed_out:
        shown = got.stdout.decode("utf-8", "replace")[-500:]
        tail = f"; its last output: {shown!r}" if shown else ""
        raise skillkit.Failed(
            f"the snippet was still running after {timeout:g} s and was killed{tail}"
        )
    result = {
        "stdout": got.stdout.decode("utf-8", "replace"),
        "stderr_tail": got.stderr.decode("utf-8", "replace"),
        "exit_code": got.code,
        "truncated": got.truncated,
        "duration_ms": round(got.seconds * 1000, 1),
    }
    if got.truncated:
        result["note"] = f"output over {STDOUT_CAP // 1024} KB: the snippet was stopped there"
    elif got.code is not None and got.code < 0:
        result["note"] = f"the snippet was killed by signal {-got.code}"
    return result


if __name__ == "__main__":
    skillkit.main("python-snippet", run)
