"""Git processes that cannot hang: a timeout per process, per object read.

:func:`run_git` starts ``git`` in its own process group and, past ``timeout_s``, kills the
whole group (hooks and ``gc``'s children included), removes the lock and temporary files
the killed git left (a stale ``refs/heads/main.lock`` would refuse every later move of
main) and raises :class:`GitTimeout`, a ``git.GitCommandError`` naming the command and
the time. :class:`Watchdog` gives object reads through GitPython's persistent
``cat-file`` processes the same bound. GitPython's own ``kill_after_timeout`` is not used:
it starts a timer thread per call, finds children with ``ps``/``pgrep`` (absent from slim
images) and reports a timeout as exit status -9 to callers that do not raise.

POSIX only (``killpg``). Importing this module loads GitPython's errors (and with them
GitPython): only the modules that open repositories import it.
"""

from __future__ import annotations

import os
import signal
import subprocess
import threading
import time
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager, suppress
from pathlib import Path
from typing import TYPE_CHECKING

from git.exc import GitCommandError

if TYPE_CHECKING:
    from git.cmd import Git


_LOCK_SLACK_S = 0.1  # file times come from a coarse clock, a tick behind time.time()
_LEFT_BY_KILL = ("packed-refs.new", "gc.pid")  # besides *.lock and tmp_* (pack files)


class GitTimeout(GitCommandError):
    """A git process or an object read ran past the timeout and was killed."""

    def __init__(self, command: Sequence[str], seconds: float, removed: Sequence[str] = ()) -> None:
        super().__init__(list(command), f"timed out after {seconds:g} s")
        self.seconds = seconds
        self.removed = tuple(removed)  # the lock and temporary files it left, removed

    def __str__(self) -> str:
        left = f"; removed what it left: {', '.join(self.removed)}" if self.removed else ""
        return (
            f"git {self.command[1]} timed out after {self.seconds:g} s "
            f"and was killed{left}\n  cmdline: {self._cmdline}"
        )


def run_git(
    cwd: Path,
    args: Sequence[str],
    timeout_s: float,
    *,
    git_dir: Path | None = None,
    env: Mapping[str, str] | None = None,
    check: bool = True,
    strip: bool = True,
) -> tuple[int, str]:
    """``git <args>`` in ``cwd``: (status, stdout). A status other than 0 raises
    ``GitCommandError`` when ``check``; running past ``timeout_s`` kills the process group
    and removes the lock files it left in ``git_dir``, then raises :class:`GitTimeout`."""
    from git.cmd import Git
    from git.exc import GitCommandError, GitCommandNotFound

    command = [str(Git.GIT_PYTHON_GIT_EXECUTABLE or "git"), *args]
    started = time.time()
    try:
        proc = subprocess.Popen(
            command,
            cwd=cwd,
            env={**os.environ, "LANGUAGE": "C", "LC_ALL": "C", **(env or {})},
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            start_new_session=True,  # one process group: hooks and gc's children die with it
        )
    except FileNotFoundError as exc:
        raise GitCommandNotFound(command, exc) from exc
    try:
        raw_out, raw_err = proc.communicate(timeout=timeout_s)
    except subprocess.TimeoutExpired as exc:
        _kill(proc)
        removed = _drop_locks(git_dir, started) if git_dir is not None else []
        raise GitTimeout(command, timeout_s, removed) from exc
    out = raw_out.decode("utf-8", "surrogateescape")
    if check and proc.returncode != 0:
        err = raw_err.decode("utf-8", "surrogateescape").rstrip("\n")
        raise GitCommandError(command, proc.returncode, err, out)
    return proc.returncode, out[:-1] if strip and out.endswith("\n") else out


def _kill(proc: subprocess.Popen[bytes]) -> None:
    with suppress(ProcessLookupError):  # not reaped yet, so the group id is still its own
        os.killpg(proc.pid, signal.SIGKILL)
    try:
        proc.communicate(timeout=1.0)
    except subprocess.TimeoutExpired:  # a child that left the group holds a pipe
        for pipe in (proc.stdout, proc.stderr):
            if pipe is not None:
                pipe.close()
        proc.wait()


def _drop_locks(git_dir: Path, since: float) -> list[str]:
    """Remove the lock and temporary files made since ``since`` by the git just killed
    (the workspace lock keeps Nexflow's own git calls apart). Git takes a lock by creating
    ``<file>.lock`` and removes it on exit, which SIGKILL skips: a stale
    ``refs/heads/main.lock`` refuses every later move of main, a stale
    ``packed-refs.new`` every later ``gc`` and deletion of a packed branch."""
    removed = []
    for top, dirs, names in os.walk(git_dir):
        if Path(top) == git_dir / "objects":  # not the loose object directories
            dirs[:] = [d for d in dirs if d in ("info", "pack")]
        for name in names:
            if not (name.endswith(".lock") or name in _LEFT_BY_KILL or name.startswith("tmp_")):
                continue
            path = Path(top, name)
            with suppress(FileNotFoundError):
                if path.stat().st_mtime >= since - _LOCK_SLACK_S:
                    path.unlink()
                    removed.append(path.relative_to(git_dir).as_posix())
    return sorted(removed)


class Watchdog:
    """Bounds object reads through GitPython's persistent ``cat-file`` processes.

    :meth:`guard` gives a read ``timeout_s``; past it, a thread kills the ``cat-file``
    processes, so a read blocked on them sees end of file, and :meth:`guard` raises
    :class:`GitTimeout`; the next read starts new ones. Arming costs a condition
    variable, not a thread: one thread per repository, started by the first read, gone
    after a minute without reads or on :meth:`close`.
    """

    IDLE_S = 60.0

    def __init__(self, git: Git, timeout_s: float) -> None:
        self._git = git
        self._timeout_s = timeout_s
        self._cond = threading.Condition()
        self._deadline: float | None = None
        self._fired = False
        self._closed = False
        self._thread: threading.Thread | None = None
        self._depth = 0  # nested guards share the outermost one's deadline

    @contextmanager
    def guard(self) -> Iterator[None]:
        if self._depth:
            self._depth += 1
            try:
                yield
            finally:
                self._depth -= 1
            return
        with self._cond:
            self._deadline = time.monotonic() + self._timeout_s
            self._fired = False
            if self._thread is None:
                self._thread = threading.Thread(
                    target=self._watch, name="nexflow-git-watchdog", daemon=True
                )
                self._thread.start()
            else:
                self._cond.notify()
        self._depth = 1
        try:
            yield
        finally:
            self._depth = 0
            with self._cond:
                self._deadline = None
                fired = self._fired
            if fired:  # even if the read returned: what it read may be cut short
                self._git.clear_cache()
                raise GitTimeout(["git", "cat-file", "--batch"], self._timeout_s)

    def _watch(self) -> None:
        with self._cond:
            while not self._closed:
                if self._deadline is None:
                    if not self._cond.wait(self.IDLE_S) and self._deadline is None:
                        break
                    continue
                left = self._deadline - time.monotonic()
                if left > 0:
                    self._cond.wait(left)
                    continue
                self._deadline, self._fired = None, True
                for cmd in (self._git.cat_file_all, self._git.cat_file_header):
                    if cmd is not None and cmd.proc is not None:
                        with suppress(ProcessLookupError):
                            os.kill(cmd.proc.pid, signal.SIGKILL)
            self._thread = None

    def close(self) -> None:
        with self._cond:
            self._closed = True
            self._cond.notify()
            thread = self._thread
        if thread is not None:
            thread.join()
