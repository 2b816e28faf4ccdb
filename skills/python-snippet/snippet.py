"""python-snippet: run a short Python snippet and return its output, capped in time and size.

The snippet runs in a child ``python3 -I`` (isolated mode: no user site, no PYTHON*
variables, the current directory not on ``sys.path``) with an empty stdin, the workspace
as its working directory and its own process group, which is killed at the deadline.
The sandbox the gateway puts around this program (no network, a read-only filesystem
except the workspace) applies to the snippet too.
"""

import contextlib
import os
import selectors
import signal
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "_lib"))
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
    timeout = args.get("timeout_sec", TIMEOUT_DEFAULT)
    if isinstance(timeout, bool) or not isinstance(timeout, int | float) or timeout <= 0:
        raise skillkit.Refused("'timeout_sec' must be a positive number")
    return code, min(float(timeout), TIMEOUT_LIMIT)


def collect(proc, deadline):
    """Read both pipes until they close or the deadline; stdout capped, stderr's tail kept."""
    out, err = bytearray(), bytearray()
    truncated = False
    sel = selectors.DefaultSelector()
    sel.register(proc.stdout, selectors.EVENT_READ, "out")
    sel.register(proc.stderr, selectors.EVENT_READ, "err")
    while sel.get_map():
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            return out, err, truncated, True
        for key, _ in sel.select(remaining):
            chunk = os.read(key.fd, 65536)
            if not chunk:
                sel.unregister(key.fileobj)
            elif key.data == "out":
                room = STDOUT_CAP - len(out)
                out += chunk[: max(room, 0)]
                if len(chunk) > room:
                    truncated = True
                    return out, err, truncated, False
            else:
                err = (err + chunk)[-STDERR_TAIL:]
    return out, err, truncated, False


def kill_group(proc):
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()


def run(args):
    code, timeout = settings(args)
    started = time.monotonic()
    proc = subprocess.Popen(
        [sys.executable, "-I", "-c", code],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        cwd=os.getcwd(),
        env={"PATH": os.environ.get("PATH", os.defpath), "LANG": "C.UTF-8", "HOME": os.getcwd()},
        start_new_session=True,
    )
    try:
        out, err, truncated, timed_out = collect(proc, started + timeout)
    finally:
        if proc.poll() is None:
            kill_group(proc)
        proc.stdout.close()
        proc.stderr.close()
    if timed_out:
        shown = out.decode("utf-8", "replace")[-500:]
        tail = f"; its last output: {shown!r}" if shown else ""
        raise skillkit.Failed(
            f"the snippet was still running after {timeout:g} s and was killed{tail}"
        )
    code_ = proc.returncode
    result = {
        "stdout": out.decode("utf-8", "replace"),
        "stderr_tail": err.decode("utf-8", "replace"),
        "exit_code": code_,
        "truncated": truncated,
        "duration_ms": round((time.monotonic() - started) * 1000, 1),
    }
    if truncated:
        result["note"] = f"output over {STDOUT_CAP // 1024} KB: the snippet was stopped there"
    elif code_ is not None and code_ < 0:
        result["note"] = f"the snippet was killed by signal {-code_}"
    return result


if __name__ == "__main__":
    skillkit.main("python-snippet", run)
