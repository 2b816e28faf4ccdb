"""The typed outcome of a skill run, and how exit codes and signals are explained."""

from __future__ import annotations

import contextlib
import json
import signal
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from nexflow.skills.isolation import IsolationLevel
from nexflow.skills.model import Skill
from nexflow.skills.schema import validate


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
    killed = _killed_reason(code, timed_out, timeout, overflow, file_size_mb)
    error = killed
    if error is None and code != 0:
        error = f"exited with status {code}"
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
        stderr_tail=stderr_tail.decode("utf-8", errors="replace"),
        truncated=overflow is not None,
        timed_out=timed_out,
        killed_reason=killed,
        first_byte_ms=first_byte_ms,
    )
