"""The typed outcome of a skill run, and how exit codes and signals are explained.

A skill never hands a Python traceback to the model or the user: when a failed run's
stderr or stdout holds one, the result keeps only the exception's last line (in
``error``, e.g. ``ValueError: embedded null byte (exited with status 1)``) and what was
printed before the traceback; the whole traceback goes to the log (``skill_traceback``).
"""

from __future__ import annotations

import contextlib
import json
import re
import signal
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import structlog

from nexflow.skills.isolation import IsolationLevel
from nexflow.skills.model import Skill
from nexflow.skills.schema import validate

log = structlog.get_logger("nexflow.skills")

_TRACEBACK = "Traceback (most recent call last):"
# A frame line, for a tail that cut the header off.
_FRAME = re.compile(r'^  File "[^"\n]*", line \d+', re.MULTILINE)


@dataclass(frozen=True, slots=True)
class RunResult:
    """The outcome of one run. ``output`` is stdout (capped); ``data`` its JSON, if any."""

    skill: str
    ok: bool
    output: str
    exit_code: int | None
    duration_ms: float
    isolation: IsolationLevel
    input: Mapping[str, Any] = field(default_factory=dict)
    data: Any = None
    error: str | None = None
    stderr_tail: str = ""
    truncated: bool = False
    timed_out: bool = False
    killed_reason: str | None = None
    first_byte_ms: float | None = None

    def to_json(self) -> dict[str, Any]:
        """The body of ``POST /api/v1/skills/{name}``."""
        return {
            "ok": self.ok,
            "output": self.output,
            "data": self.data,
            "error": self.error,
            "exit_code": self.exit_code,
            "duration_ms": round(self.duration_ms, 1),
            "truncated": self.truncated,
            "timed_out": self.timed_out,
            "killed_reason": self.killed_reason,
            "stderr_tail": self.stderr_tail,
        }


_SIGNAL_REASONS = {
    signal.SIGXCPU: "CPU time limit exceeded",
    signal.SIGKILL: "killed (SIGKILL)",
    signal.SIGSEGV: "crashed (SIGSEGV)",
}


def _killed_reason(
    code: int | None, timed_out: bool, timeout: float, overflow: str | None, file_size_mb: int
) -> str | None:
    if timed_out:
        return f"timed out after {timeout:g} s"
    if overflow:
        return overflow
    if code is None or 0 <= code <= 128:
        return None
    # A signal kills the program (negative code) or a child of a shell (128 + signal).
    sig = -code if code < 0 else code - 128
    if sig == signal.SIGXFSZ:
        return f"file size limit ({file_size_mb} MB) exceeded"
    with contextlib.suppress(ValueError):
        return _SIGNAL_REASONS.get(signal.Signals(sig))
    return None


def split_traceback(text: str) -> tuple[str, str, str] | None:
    """``(what came before, the traceback, its last line)`` when ``text`` holds a Python
    traceback (a chained one counts as one, from its first header); else None."""
    start = text.find(_TRACEBACK)
    if start < 0:
        frame = _FRAME.search(text)
        if frame is None:
            return None
        start = frame.start()
    trace = text[start:]
    lines = [line.strip() for line in trace.splitlines() if line.strip()]
    last = lines[-1] if len(lines) > 1 else "an unhandled exception"
    return text[:start].rstrip(), trace, last


def _without_tracebacks(skill: str, error: str, output: str, stderr: str) -> tuple[str, str, str]:
    """``error``, ``output`` and ``stderr`` of a failed run with any traceback cut out
    (and logged); the exception's last line is put in front of ``error``."""
    last = ""
    cleaned = []
    for stream, text in (("stdout", output), ("stderr", stderr)):
        found = split_traceback(text)
        if found is None:
            cleaned.append(text)
            continue
        before, trace, last = found
        log.warning("skill_traceback", skill=skill, stream=stream, traceback=trace)
        cleaned.append(before)
    if last:
        error = f"{last} ({error})"
    return error, cleaned[0], cleaned[1]


def build_result(
    skill: Skill,
    payload: Mapping[str, Any],
    level: IsolationLevel,
    *,
    code: int | None,
    stdout: bytes,
    stderr_tail: bytes,
    overflow: str | None,
    first_byte_ms: float | None,
    duration_ms: float,
    timed_out: bool,
    timeout: float,
    file_size_mb: int,
) -> RunResult:
    """Explain the exit, parse JSON output and check it against the output schema."""
    output = stdout.decode("utf-8", errors="replace")
    stderr = stderr_tail.decode("utf-8", errors="replace")
    killed = _killed_reason(code, timed_out, timeout, overflow, file_size_mb)
    error = killed
    if error is None and code != 0:
        error = f"exited with status {code}"
    if error is not None:
        error, output, stderr = _without_tracebacks(skill.name, error, output, stderr)
    data: Any = None
    with contextlib.suppress(ValueError):
        data = json.loads(output) if output.strip() else None
    if error is None and skill.output_schema is not None:
        if data is None and output.strip():
            error = "output is not JSON, but the skill declares an output schema"
        else:
            problems = validate(data, skill.output_schema)
            if problems:
                error = "output does not match the output schema: " + "; ".join(problems)
    return RunResult(
        skill=skill.name,
        ok=error is None,
        output=output,
        exit_code=code,
        duration_ms=duration_ms,
        isolation=level,
        input=payload,
        data=data,
        error=error,
        stderr_tail=stderr,
        truncated=overflow is not None,
        timed_out=timed_out,
        killed_reason=killed,
        first_byte_ms=first_byte_ms,
    )
