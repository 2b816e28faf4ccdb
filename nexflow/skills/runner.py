"""Run a skill's program under limits and isolation, asynchronously.

The runner neither checks user permissions nor writes the audit log: the caller (the
``run_skill`` tool, ``/run``, the HTTP endpoint) does both, and :class:`RunResult` carries
everything an audit record needs (skill, input, truncated output, exit, duration).
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import json
import os
import shutil
import signal
import subprocess
import tempfile
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from nexflow.skills import isolation as iso
from nexflow.skills.errors import (
    SkillInputInvalid,
    SkillIsolationError,
    SkillPermissionDenied,
    SkillUnavailable,
)
from nexflow.skills.limits import Limits, PidsCgroup, pids_cgroup_parent
from nexflow.skills.location import interpreter_for, resolve_location
from nexflow.skills.model import BUNDLED_SKILLS, Permission, Skill
from nexflow.skills.result import RunResult, build_result
from nexflow.skills.schema import validate

_ENV_INPUT_MAX = 64 * 1024
_CHUNK = 64 * 1024


@dataclass(slots=True)
class _Capture:
    cap: int
    tail: int
    out: bytearray = field(default_factory=bytearray)
    err: bytearray = field(default_factory=bytearray)
    err_total: int = 0
    overflow: str | None = None
    first_byte: float | None = None


class SkillRunner:
    """Spawns skill programs. One per gateway, built by the composition root.

    ``isolation=None`` picks the best level on first use (see :mod:`.isolation`);
    ``hidden_paths`` adds paths to hide (the config file and its directory);
    ``privileged_sockets``: host-control sockets covered unless a skill names them.
    """

    def __init__(
        self,
        *,
        limits: Limits | None = None,
        isolation: iso.IsolationLevel | None = None,
        hidden_paths: Sequence[Path] = (),
        max_concurrent: int = 4,
        use_cgroup: bool = True,
        path_env: str | None = None,
        lang: str = "C.UTF-8",
        privileged_sockets: Sequence[str] = iso.PRIVILEGED_SOCKETS,
    ) -> None:
        self.limits = limits or Limits()
        self._level = isolation
        self._notes: list[str] = []
        self._hidden = iso.default_hidden(hidden_paths)
        self._sockets = tuple(privileged_sockets)
        self._slots = asyncio.Semaphore(max_concurrent)
        self._detect_lock = asyncio.Lock()
        self._cgroup_parent = pids_cgroup_parent() if use_cgroup else None
        self._path = path_env if path_env is not None else os.environ.get("PATH", os.defpath)
        self._lang = lang

    async def isolation_level(self) -> iso.IsolationLevel:
        """The level in use, probed once on first call (in a thread)."""
        async with self._detect_lock:
            if self._level is not None:
                return self._level
            with tempfile.TemporaryDirectory(prefix="nexflow-probe-") as tmp:
                found, self._notes = await asyncio.to_thread(iso.detect, Path(tmp))
            self._level = found
            return found

    async def report(self) -> iso.IsolationReport:
        return iso.report_for(await self.isolation_level(), self._notes)

    async def run(
        self,
        skill: Skill,
        payload: Mapping[str, Any],
        *,
        workspace: Path,
        secrets: Mapping[str, str] | None = None,
        allow_network: bool | None = None,
        idempotency_key: str | None = None,
    ) -> RunResult:
        """Run ``skill`` with ``payload`` as JSON on stdin and in ``SKILL_INPUT``.

        ``secrets`` maps env names to values the caller granted; only the names the skill
        declares are passed. ``allow_network`` defaults to "the skill declares network".
        ``idempotency_key`` (a flow step's) is passed as ``NEXFLOW_IDEMPOTENCY_KEY``: a
        step runs at least once, so a skill with a side effect applies it once per key.
        Raises :class:`SkillError` subclasses for refusals before anything is spawned.
        """
        if not skill.available:
            raise SkillUnavailable(f"skill {skill.name!r} is unavailable: {skill.reason}")
        if skill.input_schema is not None:
            problems = validate(dict(payload), skill.input_schema)
            if problems:
                raise SkillInputInvalid(f"input for {skill.name!r}: " + "; ".join(problems))
        network = Permission.NETWORK in skill.permissions
        level = await self.isolation_level()
        launch = await asyncio.to_thread(
            functools.partial(
                self._prepare,
                skill,
                payload,
                workspace=workspace,
                secrets=secrets or {},
                network=network if allow_network is None else allow_network,
                level=level,
                idempotency_key=idempotency_key,
            )
        )
        async with self._slots:
            return await self._spawn(launch)

    def _prepare(
        self,
        skill: Skill,
        payload: Mapping[str, Any],
        *,
        workspace: Path,
        secrets: Mapping[str, str],
        network: bool,
        level: iso.IsolationLevel,
        idempotency_key: str | None = None,
    ) -> _Launch:
        """Everything that touches the filesystem before a spawn (runs in a thread)."""
        program = resolve_location(skill)
        argv = [*interpreter_for(program, self._path), str(program)]
        ws = workspace.resolve()
        if not ws.is_dir():
            raise SkillUnavailable(f"workspace {ws} is not a directory")
        plan = iso.SandboxPlan(
            level,
            ws,
            allow_network=network,
            hide=(*self._hidden, *iso.hidden_sockets(skill.sockets, self._sockets)),
            # A bundled program may import the shared modules beside it (skills/_lib).
            expose_ro=iso.exposures(
                (*self._hidden, iso.PRIVATE_TMP),
                [BUNDLED_SKILLS if skill.bundled else program.parent, *_prefixes(argv[:-1])],
            ),
        )
        if level is iso.IsolationLevel.BWRAP:
            argv = [*iso.bwrap_argv(plan, shutil.which("bwrap") or "bwrap"), *argv]
        return _Launch(
            skill=skill,
            payload=payload,
            argv=argv,
            env=self._environment(skill, payload, ws, secrets, idempotency_key),
            plan=plan,
            timeout=min(skill.timeout_sec, self.limits.max_timeout_sec),
        )

    def _environment(
        self,
        skill: Skill,
        payload: Mapping[str, Any],
        ws: Path,
        secrets: Mapping[str, str],
        idempotency_key: str | None = None,
    ) -> dict[str, str]:
        missing = [n for n in skill.env_required if n not in secrets]
        if missing:
            raise SkillPermissionDenied(
                f"skill {skill.name!r} needs {', '.join(missing)}, which was not granted"
            )
        text = json.dumps(dict(payload), ensure_ascii=False)
        env = {
            "PATH": self._path,
            "LANG": self._lang,
            "HOME": str(ws),
            "TMPDIR": "/tmp",
            "SKILL_NAME": skill.name,
            "SKILL_DIR": str(skill.directory.resolve()),
            "NEXFLOW_WORKSPACE": str(ws),
        }
        if idempotency_key:
            env["NEXFLOW_IDEMPOTENCY_KEY"] = idempotency_key
        if len(text) <= _ENV_INPUT_MAX:
            env["SKILL_INPUT"] = text
            env.update(_arg_env(payload))
        env.update({n: secrets[n] for n in skill.env_required})
        env.update({n: secrets[n] for n in skill.env_optional if n in secrets})
        return env

    async def _spawn(self, launch: _Launch) -> RunResult:
        cgroup = PidsCgroup.create(self._cgroup_parent, self.limits.nproc)
        preexec = iso.make_preexec(
            launch.plan,
            self.limits.rlimits(launch.timeout),
            cgroup.procs_file if cgroup else None,
        )
        capture = _Capture(
            cap=launch.skill.max_output_kb * 1024, tail=self.limits.stderr_tail_bytes
        )
        started = time.perf_counter()
        timed_out = False
        try:
            proc = await asyncio.create_subprocess_exec(
                *launch.argv,
                stdin=asyncio.subprocess.PIPE,
                stdout=asyncio.subprocess.PIPE,
                stderr=asyncio.subprocess.PIPE,
                cwd=launch.plan.workspace,
                env=launch.env,
                preexec_fn=preexec,
                start_new_session=True,
            )
        except (OSError, subprocess.SubprocessError) as e:
            if cgroup:
                await _remove_cgroup(cgroup)
            if isinstance(e, subprocess.SubprocessError):
                raise SkillIsolationError(
                    f"skill {launch.skill.name!r} could not start: setting up the "
                    f"{launch.plan.level.value} sandbox failed in the child process"
                ) from e
            raise SkillUnavailable(f"skill {launch.skill.name!r} could not start: {e}") from e
        data = json.dumps(dict(launch.payload), ensure_ascii=False).encode()
        io = asyncio.gather(
            _feed(proc, data),
            _read(proc.stdout, capture, started, proc, cgroup, stdout=True),
            _read(proc.stderr, capture, started, proc, cgroup, stdout=False),
        )
        try:
            async with asyncio.timeout(launch.timeout):
                await io
                await proc.wait()
        except TimeoutError:
            timed_out = True
        finally:
            _kill(proc.pid, cgroup)
            io.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await io
            await proc.wait()
            if cgroup:
                await _remove_cgroup(cgroup)
        duration = (time.perf_counter() - started) * 1000
        return build_result(
            launch.skill,
            launch.payload,
            launch.plan.level,
            code=proc.returncode,
            stdout=bytes(capture.out),
            stderr_tail=bytes(capture.err),
            overflow=capture.overflow,
            first_byte_ms=capture.first_byte,
            duration_ms=duration,
            timed_out=timed_out,
            timeout=launch.timeout,
            file_size_mb=self.limits.file_size_mb,
        )


@dataclass(frozen=True, slots=True)
class _Launch:
    skill: Skill
    payload: Mapping[str, Any]
    argv: list[str]
    env: dict[str, str]
    plan: iso.SandboxPlan
    timeout: float


def _arg_env(payload: Mapping[str, Any]) -> dict[str, str]:
    """Top-level scalar inputs as ``SKILL_ARG_<KEY>``, so shell skills need no JSON parser."""
    env = {}
    for key, value in payload.items():
        if not (isinstance(key, str) and key.isidentifier() and key.isascii()):
            continue
        if isinstance(value, bool):
            env[f"SKILL_ARG_{key.upper()}"] = "true" if value else "false"
        elif isinstance(value, str | int | float) and "\0" not in str(value):
            env[f"SKILL_ARG_{key.upper()}"] = str(value)
    return env


async def _feed(proc: asyncio.subprocess.Process, data: bytes) -> None:
    assert proc.stdin is not None
    with contextlib.suppress(BrokenPipeError, ConnectionResetError):
        proc.stdin.write(data)
        await proc.stdin.drain()
    proc.stdin.close()


async def _read(
    stream: asyncio.StreamReader | None,
    capture: _Capture,
    started: float,
    proc: asyncio.subprocess.Process,
    cgroup: PidsCgroup | None,
    *,
    stdout: bool,
) -> None:
    assert stream is not None
    while chunk := await stream.read(_CHUNK):
        if stdout:
            if capture.first_byte is None:
                capture.first_byte = (time.perf_counter() - started) * 1000
            room = capture.cap - len(capture.out)
            capture.out += chunk[: max(room, 0)]
            over = len(chunk) > room
        else:
            capture.err_total += len(chunk)
            capture.err = (capture.err + chunk)[-capture.tail :]
            over = capture.err_total > capture.cap
        if over:
            which = "output" if stdout else "stderr"
            capture.overflow = f"{which} exceeded {capture.cap // 1024} KB"
            _kill(proc.pid, cgroup)
            # Read on to EOF and drop it: a reader that stops leaves its pipe paused, and
            # so open, after the process is gone (a ResourceWarning at garbage collection).
            while await stream.read(_CHUNK):
                pass
            return


def _kill(pid: int, cgroup: PidsCgroup | None) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pid, signal.SIGKILL)
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.kill(pid, signal.SIGKILL)
    if cgroup is not None:
        cgroup.kill_all()


async def _remove_cgroup(cgroup: PidsCgroup) -> None:
    for _ in range(50):
        if cgroup.remove():
            return
        cgroup.kill_all()
        await asyncio.sleep(0.01)


def _prefixes(interpreter: Sequence[str]) -> list[Path]:
    """An interpreter's install prefix (``.../bin/python3`` → ``...``), to expose it; for
    a virtualenv's python both the venv and the base install its link points to."""
    found: list[Path] = []
    for p in interpreter:
        found += [Path(p).resolve().parent.parent, Path(os.path.abspath(p)).parent.parent]
    return found
