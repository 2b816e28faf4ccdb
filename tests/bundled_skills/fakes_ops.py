"""Fakes that speak the real protocols the ops skills use (split by protocol):

* here, :class:`FakeDockerEngine`: the Docker Engine REST API (``/containers/...``, with
  or without a ``/v1.NN`` prefix; the real JSON shapes, the multiplexed log framing) over
  a unix socket or loopback TCP;
* ``fakes_ops_kube``: a Kubernetes API server;
* ``fakes_ops_bin``: fake ``systemctl``/``journalctl`` and ``aws``/``gcloud``/``az``.

Everything a sandboxed skill must reach (sockets, fake binaries, state files) lives in
the folder the test hands in, normally the skill's workspace: the sandbox replaces
``/tmp`` with an empty one but binds the workspace back.
"""

from __future__ import annotations

import json
import re
import struct
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

from fakes_loopback import LoopbackServer, QuietHandler, ServedFake, UnixLoopbackServer

# -- Docker Engine --------------------------------------------------------------------


def _container(cid: str, name: str, image: str, *, running: bool, tty: bool = False) -> dict:
    return {
        "Id": cid,
        "Name": f"/{name}",
        "Image": "sha256:" + cid[::-1],
        "Created": "2026-12-01T10:00:00.000000000Z",
        "Path": "/docker-entrypoint.sh",
        "Args": ["nginx", "-g", "daemon off;"],
        "RestartCount": 2,
        "State": {
            "Status": "running" if running else "exited",
            "Running": running,
            "Paused": False,
            "Restarting": False,
            "OOMKilled": False,
            "Dead": False,
            "Pid": 4242 if running else 0,
            "ExitCode": 0 if running else 137,
            "Error": "",
            "StartedAt": "2026-12-05T08:00:00.000000000Z",
            "FinishedAt": "0001-01-01T00:00:00Z",
            "Health": {"Status": "healthy", "FailingStreak": 0, "Log": []},
        },
        "HostConfig": {"RestartPolicy": {"Name": "unless-stopped", "MaximumRetryCount": 0}},
        "Config": {
            "Hostname": cid[:12],
            "Image": image,
            "Tty": tty,
            "Env": ["PATH=/usr/bin", "DB_PASSWORD=hunter2"],
            "Labels": {"com.docker.compose.project": "shop"},
        },
        "Mounts": [
            {
                "Type": "bind",
                "Source": "/srv/www",
                "Destination": "/usr/share/nginx/html",
                "RW": False,
            }
        ],
        "NetworkSettings": {
            "Ports": {"80/tcp": [{"HostIp": "0.0.0.0", "HostPort": "8080"}]},
            "Networks": {"bridge": {"IPAddress": "172.17.0.2"}},
        },
    }


STATS = {
    "read": "2026-12-05T10:00:01.000000000Z",
    "name": "/web",
    "pids_stats": {"current": 7},
    "cpu_stats": {
        "cpu_usage": {"total_usage": 2_000_000_000},
        "system_cpu_usage": 110_000_000_000,
        "online_cpus": 4,
    },
    "precpu_stats": {
        "cpu_usage": {"total_usage": 1_500_000_000},
        "system_cpu_usage": 100_000_000_000,
        "online_cpus": 4,
    },
    "memory_stats": {
        "usage": 60_000_000,
        "limit": 1_000_000_000,
        "stats": {"inactive_file": 10_000_000},
    },
    "networks": {
        "eth0": {"rx_bytes": 1000, "tx_bytes": 500},
        "eth1": {"rx_bytes": 24, "tx_bytes": 12},
    },
    "blkio_stats": {
        "io_service_bytes_recursive": [
            {"major": 8, "minor": 0, "op": "read", "value": 4096},
            {"major": 8, "minor": 0, "op": "write", "value": 8192},
        ]
    },
}


def frame(stream: int, data: bytes) -> bytes:
    """One frame of the Engine's multiplexed stream."""
    return struct.pack(">BxxxI", stream, len(data)) + data


@dataclass
class DockerState:
    containers: dict[str, dict[str, Any]] = field(default_factory=dict)
    logs: dict[str, list[tuple[int, str]]] = field(default_factory=dict)
    requests: list[tuple[str, str]] = field(default_factory=list)

    def find(self, ref: str) -> dict[str, Any] | None:
        for c in self.containers.values():
            if c["Name"] == f"/{ref}" or c["Id"].startswith(ref):
                return c
        return None


_VERSIONED = re.compile(r"^/v1\.\d+(/.*)$")


class _DockerHandler(QuietHandler):
    protocol_version = "HTTP/1.1"

    def _json(self, status: int, body: object) -> None:
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def _empty(self, status: int) -> None:
        self.send_response(status)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def _route(self) -> tuple[str, dict[str, list[str]]]:
        parts = urlsplit(self.path)
        m = _VERSIONED.match(parts.path)
        state = self.server.fake.state
        state.requests.append((self.command, self.path))
        return (m.group(1) if m else parts.path), parse_qs(parts.query)

    def _missing(self, ref: str) -> None:
        self._json(404, {"message": f"No such container: {ref}"})

    def do_GET(self) -> None:
        path, query = self._route()
        state = self.server.fake.state
        if path == "/containers/json":
            rows = []
            wanted = json.loads(query.get("filters", ["{}"])[0]).get("name", [])
            for c in state.containers.values():
                if query.get("all", ["0"])[0] != "1" and not c["State"]["Running"]:
                    continue
                if wanted and not any(w in c["Name"] for w in wanted):
                    continue
                rows.append(
                    {
                        "Id": c["Id"],
                        "Names": [c["Name"]],
                        "Image": c["Config"]["Image"],
                        "Command": "/docker-entrypoint.sh nginx",
                        "Created": 1764928800,
                        "State": c["State"]["Status"],
                        "Status": "Up 2 hours"
                        if c["State"]["Running"]
                        else "Exited (137) 1 hour ago",
                        "Ports": [
                            {"IP": "0.0.0.0", "PrivatePort": 80, "PublicPort": 8080, "Type": "tcp"}
                        ],
                    }
                )
            self._json(200, rows)
            return
        m = re.fullmatch(r"/containers/([^/]+)/(json|logs|stats)", path)
        if not m:
            self._json(404, {"message": "page not found"})
            return
        c = state.find(m.group(1))
        if c is None:
            self._missing(m.group(1))
            return
        if m.group(2) == "json":
            self._json(200, c)
        elif m.group(2) == "stats":
            self._json(200, {**STATS, "name": c["Name"]})
        else:
            self._logs(c, query)

    def _logs(self, c: dict[str, Any], query: dict[str, list[str]]) -> None:
        lines = self.server.fake.state.logs.get(c["Name"].lstrip("/"), [])
        tail = query.get("tail", ["all"])[0]
        if tail != "all":
            lines = lines[-int(tail) :] if int(tail) else []
        if c["Config"]["Tty"]:
            body = "".join(text + "\n" for _, text in lines).encode()
            kind = "application/vnd.docker.raw-stream"
        else:
            body = b"".join(frame(stream, (text + "\n").encode()) for stream, text in lines)
            kind = "application/vnd.docker.multiplexed-stream"
        self.send_response(200)
        self.send_header("Content-Type", kind)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_POST(self) -> None:
        path, _ = self._route()
        m = re.fullmatch(r"/containers/([^/]+)/(restart|stop|start)", path)
        if not m:
            self._json(404, {"message": "page not found"})
            return
        c = self.server.fake.state.find(m.group(1))
        if c is None:
            self._missing(m.group(1))
            return
        running = c["State"]["Running"]
        action = m.group(2)
        if (action == "start" and running) or (action == "stop" and not running):
            self._empty(304)
            return
        now_running = action != "stop"
        c["State"].update(Running=now_running, Status="running" if now_running else "exited")
        if action == "restart":
            c["RestartCount"] += 1
        self._empty(204)


class FakeDockerEngine(ServedFake):
    """The Docker Engine API on a unix socket at ``path`` (or, with ``path=None``, on
    127.0.0.1 over TCP), with three containers: ``web`` (running, multiplexed logs),
    ``worker`` (exited) and ``console`` (a TTY: raw logs)."""

    def __init__(self, path: Path | None) -> None:
        self.path = path
        self.state = DockerState()
        for c in (
            _container("4f1c2a9b8e7d" + "0" * 52, "web", "nginx:1.27", running=True),
            _container("9a8b7c6d5e4f" + "1" * 52, "worker", "shop/worker:2", running=False),
            _container("c0ffee000000" + "2" * 52, "console", "busybox", running=True, tty=True),
        ):
            self.state.containers[c["Id"]] = c
        self.state.logs["web"] = [(1, "GET / 200"), (2, "upstream timed out"), (1, "GET /a 404")]
        self.state.logs["console"] = [(1, "tty line one"), (1, "tty line two")]
        self.url = ""

    def container(self, name: str) -> dict[str, Any]:
        found = self.state.find(name)
        assert found is not None
        return found

    def posts(self) -> list[str]:
        return [p for m, p in self.state.requests if m == "POST"]

    def _make_server(self) -> LoopbackServer | UnixLoopbackServer:
        if self.path is None:
            tcp = LoopbackServer(_DockerHandler, self)
            self.url = f"tcp://127.0.0.1:{tcp.port}"
            return tcp
        self.url = f"unix://{self.path}"
        return UnixLoopbackServer(self.path, _DockerHandler, self)

    def __exit__(self, *exc: object) -> None:
        super().__exit__(*exc)
        if self.path is not None:
            self.path.unlink(missing_ok=True)
