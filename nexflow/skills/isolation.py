"""Process isolation for skills: bubblewrap, kernel namespaces, or none.

Levels (``auto`` tries namespaces, then bwrap, then falls back to none):

``bwrap``
    bubblewrap: new user/pid/ipc/uts/net namespaces (net shared only for skills that
    declare ``network``), the whole filesystem read-only except the workspace, a private
    ``/tmp``, and the hidden paths (home, ``/root``, ``~/.ssh``, the config dir) replaced by
    empty tmpfs; all capabilities dropped.
``namespaces``
    The same confinement built in the forked child with ``unshare(2)`` and ``mount(2)``
    (what ``unshare --user --net --mount`` does, without an extra exec): a network
    namespace with only loopback (down) unless ``network`` is declared, a private mount
    namespace with every mount re-mounted read-only, hidden paths covered, the workspace
    bound read-write; the capability bounding set emptied and ``no_new_privs`` set so the
    skill cannot undo any of it.
``none``
    Only rlimits, the scrubbed environment and the working directory. Network and
    filesystem are NOT confined; :func:`isolation_report` says so.
"""

from __future__ import annotations

import ctypes
import os
import shutil
import signal
import subprocess
import tempfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path

from nexflow.skills import limits as _limits

CLONE_NEWNS = 0x00020000
CLONE_NEWUSER = 0x10000000
CLONE_NEWNET = 0x40000000
MS_RDONLY, MS_NOSUID, MS_NODEV, MS_NOEXEC = 1, 2, 4, 8
MS_REMOUNT, MS_NOATIME, MS_NODIRATIME, MS_BIND = 32, 1024, 2048, 4096
MS_REC, MS_PRIVATE, MS_RELATIME, MS_STRICTATIME = 16384, 1 << 18, 1 << 21, 1 << 24
PR_SET_PDEATHSIG, PR_CAPBSET_DROP, PR_SET_NO_NEW_PRIVS = 1, 24, 38
_OPTION_FLAGS = {
    "nosuid": MS_NOSUID,
    "nodev": MS_NODEV,
    "noexec": MS_NOEXEC,
    "noatime": MS_NOATIME,
    "nodiratime": MS_NODIRATIME,
    "relatime": MS_RELATIME,
}


PRIVATE_TMP = Path("/tmp")
"""Replaced by an empty tmpfs in the sandbox (skill folders under it are bound back)."""


class IsolationLevel(StrEnum):
    BWRAP = "bwrap"
    NAMESPACES = "namespaces"
    NONE = "none"


@dataclass(frozen=True, slots=True)
class IsolationReport:
    """What ``nexflow doctor`` prints about skill isolation."""

    level: IsolationLevel
    network_isolated: bool
    filesystem_confined: bool
    pids_cgroup: bool
    nproc_enforced: bool
    notes: tuple[str, ...] = ()

    def text(self) -> str:
        lines = [
            f"skill isolation: {self.level.value}",
            f"  network off for skills without 'network': {_yes(self.network_isolated)}",
            f"  filesystem read-only, secrets hidden: {_yes(self.filesystem_confined)}",
            f"  process limit: RLIMIT_NPROC {_yes(self.nproc_enforced)}, "
            f"pids cgroup {_yes(self.pids_cgroup)}",
        ]
        return "\n".join(lines + [f"  note: {n}" for n in self.notes])


def _yes(flag: bool) -> str:
    return "yes" if flag else "NO"


@dataclass(frozen=True, slots=True)
class SandboxPlan:
    """Everything the child needs, computed in the parent (the child must not allocate much)."""

    level: IsolationLevel
    workspace: Path
    allow_network: bool
    hide: tuple[Path, ...] = ()
    expose_ro: tuple[Path, ...] = ()


def default_hidden(extra: Sequence[Path] = ()) -> tuple[Path, ...]:
    """Home, ``~/.ssh``, ``/root`` and ``extra``, outermost only (a tmpfs over a folder
    already hides what is inside it, and everything under ``/tmp`` is private anyway)."""
    home = Path.home()
    paths = sorted({p.resolve() for p in (home, home / ".ssh", Path("/root"), *extra)})
    kept: list[Path] = [PRIVATE_TMP]
    for path in paths:
        if path.exists() and not any(path.is_relative_to(k) for k in kept):
            kept.append(path)
    return tuple(kept[1:])


PRIVILEGED_SOCKETS = (
    "/run/docker.sock",
    "/var/run/docker.sock",
    "/run/containerd/containerd.sock",
    "/run/podman/podman.sock",
    "/run/crio/crio.sock",
    "/run/systemd/private",
    "/run/dbus/system_bus_socket",
    "/run/snapd.socket",
    "/var/run/libvirt/libvirt-sock",
)
"""Unix sockets that control the host (root through Docker, systemd, D-Bus...). Neither a
read-only filesystem nor a network namespace stops ``connect(2)`` to a socket file, so
they are covered in the sandbox unless the skill names them in ``sockets:``."""


def hidden_sockets(
    allowed: Sequence[str], candidates: Sequence[str] = PRIVILEGED_SOCKETS
) -> tuple[Path, ...]:
    """The existing ``candidates`` a skill did not ask for (resolved, so aliases match)."""
    keep = {Path(a).resolve() for a in allowed}
    found = {Path(c).resolve() for c in candidates if Path(c).exists()}
    return tuple(sorted(found - keep))


def exposures(plan_hide: Sequence[Path], wanted: Sequence[Path]) -> tuple[Path, ...]:
    """The ``wanted`` paths that sit under a hidden path and must be bound back read-only."""
    hidden = [w for w in wanted if any(w.is_relative_to(h) for h in plan_hide)]
    return tuple(sorted(set(hidden), key=lambda p: len(p.parts)))


def bwrap_argv(plan: SandboxPlan, bwrap: str) -> list[str]:
    argv = [bwrap, "--die-with-parent", "--new-session", "--unshare-ipc", "--unshare-pid"]
    argv += ["--unshare-uts", "--unshare-cgroup-try"]
    if os.getuid() != 0:
        argv.append("--unshare-user")
    if not plan.allow_network:
        argv.append("--unshare-net")
    argv += ["--cap-drop", "ALL", "--ro-bind", "/", "/", "--dev", "/dev", "--proc", "/proc"]
    argv += ["--tmpfs", "/tmp"]
    for path in plan.hide:
        kind = "--tmpfs" if path.is_dir() else "--ro-bind"
        argv += [kind, str(path)] if kind == "--tmpfs" else [kind, "/dev/null", str(path)]
    for path in plan.expose_ro:
        argv += ["--ro-bind", str(path), str(path)]
    ws = str(plan.workspace)
    argv += ["--bind", ws, ws, "--chdir", ws, "--"]
    return argv


def _check(result: int, what: str) -> None:
    if result != 0:
        err = ctypes.get_errno()
        raise OSError(err, f"{what}: {os.strerror(err)}")


def _write(path: str, data: str) -> None:
    fd = os.open(path, os.O_WRONLY)
    try:
        os.write(fd, data.encode())
    finally:
        os.close(fd)


class _Confiner:
    """Builds the namespaces-level sandbox inside the forked child (see module docstring)."""

    def __init__(self, plan: SandboxPlan, libc: ctypes.CDLL) -> None:
        self.libc = libc
        self.uid, self.gid = os.getuid(), os.getgid()
        self.ws = str(plan.workspace).encode()
        self.hide = [(str(p).encode(), p.is_dir()) for p in plan.hide]
        self.expose = [str(p).encode() for p in plan.expose_ro]
        self.flags = CLONE_NEWNS | (0 if plan.allow_network else CLONE_NEWNET)
        if self.uid != 0:
            self.flags |= CLONE_NEWUSER

    def mount(
        self, src: bytes | None, dst: bytes, fstype: bytes | None, fl: int, data: bytes | None
    ) -> None:
        _check(self.libc.mount(src, dst, fstype, fl, data), f"mount {dst!r}")

    def __call__(self) -> None:
        _check(self.libc.unshare(self.flags), "unshare")
        if self.uid != 0:
            _write("/proc/self/setgroups", "deny")
            _write("/proc/self/uid_map", f"{self.uid} {self.uid} 1")
            _write("/proc/self/gid_map", f"{self.gid} {self.gid} 1")
        self.mount(None, b"/", None, MS_REC | MS_PRIVATE, None)
        # Open what must stay visible before anything covers it, then bind it back.
        fds = [(os.open(p, os.O_PATH), p) for p in self.expose]
        fds.append((os.open(self.ws, os.O_PATH | os.O_DIRECTORY), self.ws))
        self.mount(b"tmpfs", b"/tmp", b"tmpfs", MS_NOSUID | MS_NODEV, b"size=64m,mode=1777")
        for path, is_dir in self.hide:
            if is_dir:
                self.mount(b"tmpfs", path, b"tmpfs", MS_NOSUID | MS_NODEV, b"size=64k,mode=755")
            else:
                self.mount(b"/dev/null", path, None, MS_BIND, None)
        for fd, dst in fds:
            os.makedirs(dst, exist_ok=True)
            self.mount(f"/proc/self/fd/{fd}".encode(), dst, None, MS_BIND | MS_REC, None)
            os.close(fd)
        self.read_only_everywhere()
        os.chdir(self.ws)

    def read_only_everywhere(self) -> None:
        with open("/proc/self/mountinfo", "rb") as fh:
            table = fh.read().splitlines()
        for row in table:
            fields = row.split(b" ")
            point = fields[4].replace(b"\\040", b" ")
            if point in (self.ws, b"/tmp") or point.startswith(self.ws + b"/"):
                continue
            # Locked flags (nosuid, nodev, atime...) must be repeated or the remount fails.
            fl = MS_REMOUNT | MS_BIND | MS_RDONLY
            for opt in fields[5].split(b","):
                fl |= _OPTION_FLAGS.get(opt.decode(), 0)
            result = self.libc.mount(None, point, None, fl, None)
            if point == b"/":
                _check(result, "remount / read-only")


def make_preexec(
    plan: SandboxPlan,
    rlimits: tuple[tuple[int, int], ...],
    cgroup_procs: bytes | None,
) -> Callable[[], None]:
    """The function run in the forked child before exec. Everything it needs is bound now."""
    libc = ctypes.CDLL(None, use_errno=True)
    confine = _Confiner(plan, libc) if plan.level is IsolationLevel.NAMESPACES else None
    drop_caps = os.getuid() == 0 and plan.level is not IsolationLevel.BWRAP

    def preexec() -> None:
        if cgroup_procs is not None:
            _limits.join_cgroup(cgroup_procs)
        libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
        if confine is not None:
            confine()
        _limits.apply_rlimits(rlimits)
        if drop_caps:  # bwrap needs its capabilities; it drops them itself (--cap-drop ALL)
            for cap in range(64):
                libc.prctl(PR_CAPBSET_DROP, cap, 0, 0, 0)
        libc.prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0)

    return preexec


def _probe_level(level: IsolationLevel, tmp: Path) -> str | None:
    """Run ``true`` under ``level`` with the network off; None when it works, else why."""
    plan = SandboxPlan(level, tmp, allow_network=False, hide=default_hidden())
    argv = ["true"]
    if level is IsolationLevel.BWRAP:
        bwrap = shutil.which("bwrap")
        if bwrap is None:
            return "bwrap is not installed"
        argv = [*bwrap_argv(plan, bwrap), "true"]
    preexec = make_preexec(plan, (), None)
    try:
        done = subprocess.run(  # noqa: PLW1510 - the return code is checked below
            argv, preexec_fn=preexec, capture_output=True, timeout=10, cwd=tmp
        )
    except (OSError, subprocess.SubprocessError) as e:
        return f"{type(e).__name__}: {e}"
    if done.returncode != 0:
        return done.stderr.decode(errors="replace").strip()[:200] or f"exit {done.returncode}"
    return None


def detect(tmp: Path, prefer: IsolationLevel | None = None) -> tuple[IsolationLevel, list[str]]:
    """The best level that works here (blocking: call from a thread or at startup)."""
    notes: list[str] = []
    # Both confine the same way; namespaces skip an exec (about 7 ms vs 30 ms per run),
    # bwrap also works without root. ``prefer`` pins one level.
    order = [IsolationLevel.NAMESPACES, IsolationLevel.BWRAP]
    if prefer is not None:
        order = [prefer] if prefer in order else []
    for level in order:
        why = _probe_level(level, tmp)
        if why is None:
            return level, notes
        notes.append(f"{level.value} unavailable: {why}")
    return IsolationLevel.NONE, notes


def isolation_report(tmp: Path | None = None) -> IsolationReport:
    """Probe the host and describe the isolation skills get. Blocking: for ``nexflow doctor``."""
    with tempfile.TemporaryDirectory(prefix="nexflow-probe-") as scratch:
        level, notes = detect(tmp or Path(scratch))
    return report_for(level, notes)


def report_for(level: IsolationLevel, notes: Sequence[str] = ()) -> IsolationReport:
    confined = level is not IsolationLevel.NONE
    root = os.getuid() == 0
    has_cgroup = _limits.pids_cgroup_parent() is not None
    out = list(notes)
    if not confined:
        out.append("skills can reach the network and read any file the gateway can read")
    if root and not has_cgroup:
        out.append(
            "running as root without a writable pids cgroup: fork bombs are only "
            "stopped by the timeout"
        )
    return IsolationReport(level, confined, confined, has_cgroup, not root, tuple(out))
