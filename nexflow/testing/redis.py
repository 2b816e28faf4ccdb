"""A throwaway Redis server for tests and benchmarks (the Debian package's binary).

``start_redis()`` runs ``redis-server`` on a free loopback port with persistence off
(``--save '' --appendonly no``) in a folder of its own under /tmp; ``stop()`` kills it
and removes the folder.
"""

from __future__ import annotations

import shutil
import socket
import subprocess
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path


@dataclass
class RedisServer:
    """A running throwaway ``redis-server`` on 127.0.0.1."""

    url: str
    port: int
    process: subprocess.Popen[bytes]
    folder: Path

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
        self.process.wait(10)
        shutil.rmtree(self.folder, ignore_errors=True)


def start_redis(timeout_s: float = 10.0) -> RedisServer | None:
    """Start a server, or None when ``redis-server`` is not installed."""
    binary = shutil.which("redis-server")
    if binary is None:
        return None
    folder = Path(tempfile.mkdtemp(prefix="nexflow-redis-"))
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    argv = [
        binary,
        "--port",
        str(port),
        "--bind",
        "127.0.0.1",
        "--save",
        "",
        "--appendonly",
        "no",
        "--dir",
        str(folder),
        "--daemonize",
        "no",
    ]
    log = (folder / "log").open("wb")
    with log:
        process = subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT, cwd=folder)
    server = RedisServer(f"redis://127.0.0.1:{port}/0", port, process, folder)
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if process.poll() is not None:
            text = (folder / "log").read_text(errors="replace")
            server.stop()
            raise RuntimeError(f"redis-server exited at start: {text[-2000:]}")
        if _pong(port):
            return server
        time.sleep(0.02)
    server.stop()
    raise RuntimeError(f"redis-server did not answer on port {port} within {timeout_s} s")


def _pong(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=1.0) as sock:
            sock.sendall(b"PING\r\n")
            return sock.recv(16).startswith(b"+PONG")
    except OSError:
        return False
