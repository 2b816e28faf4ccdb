"""Resource limits for skill processes: rlimits set in the child, and a pids cgroup.

``RLIMIT_NPROC`` counts every process of the real user and is not enforced for root, so
when the gateway runs as root (containers) and a pids cgroup is writable, each run gets
its own cgroup with ``pids.max``; it also lets the runner kill every descendant, even one
that left the process group with ``setsid``.
"""

from __future__ import annotations

import contextlib
import math
import os
import resource
import signal
import uuid
from dataclasses import dataclass
from pathlib import Path

_MB = 1024 * 1024
_V1_PIDS = Path("/sys/fs/cgroup/pids")
_V2_ROOT = Path("/sys/fs/cgroup")


@dataclass(frozen=True, slots=True)
class Limits:
    """Per-run ceilings. ``cpu_sec=None`` means "the run's timeout, rounded up, plus one"."""

    cpu_sec: int | None = None
    address_space_mb: int = 4096
    file_size_mb: int = 64
    nproc: int = 256
    nofile: int = 256
    max_timeout_sec: float = 600.0
    stderr_tail_bytes: int = 4096

    def rlimits(self, timeout_sec: float) -> tuple[tuple[int, int], ...]:
        cpu = self.cpu_sec if self.cpu_sec is not None else math.ceil(timeout_sec) + 1
        return (
            (resource.RLIMIT_CPU, cpu),
            (resource.RLIMIT_AS, self.address_space_mb * _MB),
            (resource.RLIMIT_FSIZE, self.file_size_mb * _MB),
            (resource.RLIMIT_NPROC, self.nproc),
            (resource.RLIMIT_NOFILE, self.nofile),
            (resource.RLIMIT_CORE, 0),
        )


def apply_rlimits(pairs: tuple[tuple[int, int], ...]) -> None:
    """Runs in the forked child before exec: never lower a hard limit below the soft one."""
    for which, value in pairs:
        _soft, hard = resource.getrlimit(which)
        ceiling = value if hard == resource.RLIM_INFINITY else min(value, hard)
        resource.setrlimit(which, (ceiling, ceiling))


class PidsCgroup:
    """One run's pids cgroup (v1 ``pids`` hierarchy or a v2 subtree with ``pids``)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.procs_file = str(path / "cgroup.procs").encode()

    @classmethod
    def create(cls, parent: Path | None, limit: int) -> PidsCgroup | None:
        """A fresh cgroup under ``parent`` with ``pids.max = limit``; None if not possible."""
        if parent is None:
            return None
        path = parent / f"nexflow-skill-{uuid.uuid4().hex[:12]}"
        try:
            path.mkdir()
        except OSError:
            return None
        try:
            (path / "pids.max").write_text(str(limit))
        except OSError:
            with contextlib.suppress(OSError):
                path.rmdir()
            return None
        return cls(path)

    def pids(self) -> list[int]:
        try:
            text = (self.path / "cgroup.procs").read_text()
        except OSError:
            return []
        return [int(p) for p in text.split()]

    def kill_all(self) -> None:
        kill_file = self.path / "cgroup.kill"
        if kill_file.exists():
            with contextlib.suppress(OSError):
                kill_file.write_text("1")
                return
        for _ in range(100):
            pids = self.pids()
            if not pids:
                return
            for pid in pids:
                with contextlib.suppress(ProcessLookupError, PermissionError):
                    os.kill(pid, signal.SIGKILL)

    def remove(self) -> bool:
        try:
            self.path.rmdir()
        except OSError:
            return False
        return True


def pids_cgroup_parent() -> Path | None:
    """Where per-run pids cgroups can be created, or None when cgroups are not writable."""
    if (_V1_PIDS / "cgroup.procs").exists() and os.access(_V1_PIDS, os.W_OK):
        return _V1_PIDS
    try:
        own = Path("/proc/self/cgroup").read_text()
    except OSError:
        return None
    for line in own.splitlines():
        if line.startswith("0::"):
            base = _V2_ROOT / line[3:].lstrip("/")
            controllers = base / "cgroup.subtree_control"
            try:
                if "pids" in controllers.read_text().split() and os.access(base, os.W_OK):
                    return base
            except OSError:
                return None
    return None


def join_cgroup(procs_file: bytes) -> None:
    """Runs in the forked child: move itself into the run's cgroup."""
    fd = os.open(procs_file, os.O_WRONLY)
    try:
        os.write(fd, str(os.getpid()).encode())
    finally:
        os.close(fd)
