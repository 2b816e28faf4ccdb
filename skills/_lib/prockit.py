"""Helpers the ops skills share (docker, kubectl, systemd, cloud-cli); standard library only.

* :func:`run` starts a binary from an argv list (never a shell string), with stdin closed,
  a time limit and a cap on what it may print;
* :func:`capture` runs one the same way but stops at the cap or the time limit and hands
  back what was printed until then (python-snippet, ssh-command);
* :class:`UnixHTTPConnection` speaks HTTP over a unix socket (the Docker Engine API);
* :func:`http_call` sends one request and reads a capped answer;
* :func:`deadline` stops a whole block after some seconds, even against a server that
  sends one byte at a time;
* :func:`check_name` refuses names that could be read as an option or a path.

Errors are :class:`skillkit.Refused` / :class:`skillkit.Failed` / ``TimeoutError``, so a
program's ``skillkit.main`` turns them into one clear line and the right exit status.
"""

from __future__ import annotations

import contextlib
import http.client
import json
import os
import re
import selectors
import signal
import socket
import subprocess
import time
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import skillkit

_CTRL = re.compile(r"[\x00-\x1f\x7f]")


@dataclass(frozen=True)
class Completed:
    """What a finished command printed; ``truncated`` when stdout passed the cap."""

    argv: tuple[str, ...]
    code: int
    stdout: bytes
    stderr: bytes
    truncated: bool

    def stderr_line(self, limit: int = 500) -> str:
        """The last non-empty stderr lines, joined, for an error message."""
        lines = [ln.strip() for ln in self.stderr.decode(errors="replace").splitlines()]
        text = " | ".join(ln for ln in lines if ln)[-limit:]
        return text or f"exit status {self.code}"


def run(
    argv: Sequence[str],
    *,
    timeout: float,
    max_bytes: int,
    env: Mapping[str, str] | None = None,
) -> Completed:
    """Run ``argv`` and collect its output; stdout past ``max_bytes`` is cut (the process
    is stopped), stderr keeps its last 16 KB. ``TimeoutError`` after ``timeout`` seconds;
    ``Failed`` when the binary is missing."""
    proc = _spawn(argv, env)
    out, err = bytearray(), bytearray()
    truncated = False
    end = time.monotonic() + timeout
    sel = selectors.DefaultSelector()
    assert proc.stdout is not None and proc.stderr is not None
    sel.register(proc.stdout, selectors.EVENT_READ, out)
    sel.register(proc.stderr, selectors.EVENT_READ, err)
    try:
        while sel.get_map():
            left = end - time.monotonic()
            if left <= 0:
                raise TimeoutError(f"{argv[0]} gave no complete answer within {timeout:g} s")
            for key, _ in sel.select(left):
                chunk = os.read(key.fd, 65536)
                if not chunk:
                    sel.unregister(key.fileobj)
                    continue
                buf = key.data
                buf += chunk
                if buf is err and len(err) > 16384:
                    del err[:-16384]
                if buf is out and len(out) > max_bytes:
                    del out[max_bytes:]
                    truncated = True
                    _stop(proc)
                    sel.unregister(key.fileobj)
        code = proc.wait(max(end - time.monotonic(), 0.1))
    except subprocess.TimeoutExpired:
        raise TimeoutError(f"{argv[0]} did not exit within {timeout:g} s") from None
    finally:
        sel.close()
        _stop(proc)
        proc.stdout.close()
        proc.stderr.close()
    return Completed(tuple(argv), code, bytes(out), bytes(err), truncated)


@dataclass(frozen=True)
class Captured:
    """What :func:`capture` read: stdout up to the cap (``truncated`` when it passed it),
    the tail of stderr, the exit status (negative: killed by that signal), whether the
    time ran out and how long it all took."""

    stdout: bytes
    stderr: bytes
    code: int
    truncated: bool
    timed_out: bool
    seconds: float


def capture(
    argv: Sequence[str],
    *,
    timeout: float,
    stdout_cap: int,
    stderr_tail: int,
    env: Mapping[str, str] | None = None,
) -> Captured:
    """Run ``argv`` in its own process group with stdin closed and read both pipes until
    they close, stdout passes ``stdout_cap`` or ``timeout`` runs out; the group is then
    killed if it still runs. Unlike :func:`run`, what was printed is kept either way."""
    started = time.monotonic()
    proc = _spawn(argv, env)
    assert proc.stdout is not None and proc.stderr is not None
    try:
        out, err, truncated, timed_out = _collect(proc, started + timeout, stdout_cap, stderr_tail)
    finally:
        _stop(proc)
        proc.stdout.close()
        proc.stderr.close()
    seconds = time.monotonic() - started
    return Captured(bytes(out), bytes(err), proc.returncode, truncated, timed_out, seconds)


def _collect(
    proc: subprocess.Popen[bytes], deadline: float, cap: int, tail: int
) -> tuple[bytearray, bytearray, bool, bool]:
    """stdout, stderr's tail, truncated, timed out."""
    out, err = bytearray(), bytearray()
    sel = selectors.DefaultSelector()
    sel.register(proc.stdout, selectors.EVENT_READ, out)
    sel.register(proc.stderr, selectors.EVENT_READ, err)
    with sel:
        while sel.get_map():
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return out, err, False, True
            for key, _ in sel.select(remaining):
                chunk = os.read(key.fd, 65536)
                if not chunk:
                    sel.unregister(key.fileobj)
                elif key.data is out:
                    room = cap - len(out)
                    out += chunk[: max(room, 0)]
                    if len(chunk) > room:
                        return out, err, True, False
                else:
                    err += chunk
                    del err[:-tail]
    return out, err, False, False


def _spawn(argv: Sequence[str], env: Mapping[str, str] | None) -> subprocess.Popen[bytes]:
    try:
        return subprocess.Popen(
            list(argv),
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            env=dict(env) if env is not None else None,
            start_new_session=True,
        )
    except FileNotFoundError:
        raise skillkit.Failed(f"{argv[0]} is not installed (not found on PATH)") from None
    except PermissionError:
        raise skillkit.Failed(f"{argv[0]} cannot be executed (permission denied)") from None


def _stop(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()


class UnixHTTPConnection(http.client.HTTPConnection):
    """HTTP/1.1 over a unix socket (``Host: localhost``)."""

    def __init__(self, path: str, timeout: float) -> None:
        super().__init__("localhost", timeout=timeout)
        self.socket_path = path

    def connect(self) -> None:
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        sock.settimeout(self.timeout)
        try:
            sock.connect(self.socket_path)
        except OSError as e:
            sock.close()
            why = e.strerror or str(e)
            raise skillkit.Failed(f"cannot connect to {self.socket_path}: {why}") from None
        self.sock = sock


@dataclass(frozen=True)
class Answer:
    """One HTTP answer: status, lower-cased headers, the body read up to the cap."""

    status: int
    headers: Mapping[str, str]
    body: bytes
    truncated: bool

    def json(self, who: str, cap: int, hint: str = "") -> Any:
        """The body as JSON; ``Failed`` naming ``who`` when it was cut at ``cap`` or is
        not JSON."""
        if self.truncated:
            raise skillkit.Failed(f"{who}'s answer is over {cap} bytes{hint}")
        try:
            return json.loads(self.body)
        except ValueError:
            raise skillkit.Failed(f"{who}'s answer is not JSON") from None

    def said(self) -> str:
        """What an error answer says: its JSON ``message``, else its text."""
        try:
            found = json.loads(self.body)
            message = found.get("message") if isinstance(found, dict) else None
        except ValueError:
            message = None
        return str(message or self.body.decode(errors="replace").strip())


def http_call(
    conn: http.client.HTTPConnection,
    method: str,
    target: str,
    *,
    body: bytes | None = None,
    headers: Mapping[str, str] | None = None,
    max_bytes: int,
) -> Answer:
    """Send one request on ``conn`` and read at most ``max_bytes`` of the answer."""
    try:
        conn.connect()
    except OSError as e:
        where = getattr(conn, "socket_path", None) or f"{conn.host}:{conn.port}"
        conn.close()
        raise skillkit.Failed(f"cannot connect to {where}: {e.strerror or e}") from None
    try:
        conn.request(method, target, body=body, headers=dict(headers or {}))
        resp = conn.getresponse()
        data = bytearray()
        truncated = False
        while chunk := resp.read(min(65536, max_bytes + 1 - len(data))):
            data += chunk
            if len(data) > max_bytes:
                del data[max_bytes:]
                truncated = True
                break
        heads = {k.lower(): v for k, v in resp.getheaders()}
        return Answer(resp.status, heads, bytes(data), truncated)
    except (http.client.HTTPException, ConnectionError) as e:
        raise skillkit.Failed(f"the server broke off the answer: {type(e).__name__}") from None
    finally:
        conn.close()


@contextlib.contextmanager
def deadline(seconds: float) -> Iterator[None]:
    """Raise ``TimeoutError`` in the block after ``seconds`` (SIGALRM: main thread only)."""

    def on_alarm(signum: int, frame: object) -> None:
        raise TimeoutError(f"no answer within {seconds:g} s")

    previous = signal.signal(signal.SIGALRM, on_alarm)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


def check_name(value: object, field: str, pattern: re.Pattern[str], hint: str) -> str:
    """``value`` when it is a string matching ``pattern``; else ``Refused`` saying why.
    A leading ``-`` is always refused, so a name can never become an option."""
    if not isinstance(value, str) or not value:
        raise skillkit.Refused(f"'{field}' must be a non-empty string")
    if value.startswith("-"):
        raise skillkit.Refused(f"'{field}' {value[:80]!r} starts with '-'; names cannot be options")
    if _CTRL.search(value) or not pattern.fullmatch(value):
        raise skillkit.Refused(f"'{field}' {value[:80]!r} is not a valid name ({hint})")
    return value


def int_in(args: Mapping[str, object], field: str, default: int, low: int, high: int) -> int:
    """An integer input within ``[low, high]`` (``default`` when absent)."""
    value = args.get(field, default)
    if isinstance(value, bool) or not isinstance(value, int):
        raise skillkit.Refused(f"'{field}' must be an integer")
    if not low <= value <= high:
        raise skillkit.Refused(f"'{field}' must be between {low} and {high}, not {value}")
    return value


def choice(args: Mapping[str, object], field: str, options: Sequence[str]) -> str:
    """A required input that must be one of ``options``."""
    value = args.get(field)
    if value not in options:
        raise skillkit.Refused(f"'{field}' must be one of {', '.join(options)}; got {value!r}")
    return str(value)


def keep_last(items: list[Any], budget: int) -> tuple[list[Any], bool]:
    """The newest ``items`` whose JSON fits in ``budget`` characters, and whether any were
    dropped (escaping can make text much longer than its bytes)."""
    kept: list[Any] = []
    used = 0
    for item in reversed(items):
        used += len(json.dumps(item, ensure_ascii=False)) + 2
        if used > budget:
            return kept[::-1], True
        kept.append(item)
    return kept[::-1], False


def clip(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"
