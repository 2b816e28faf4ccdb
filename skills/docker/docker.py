"""docker: look at containers and restart/stop/start them through the Docker Engine API.

Speaks the Engine REST API (``/containers/...``, unversioned: the engine's own API
version, whose container JSON has kept these fields for years) over the socket named by
DOCKER_HOST (``unix:///var/run/docker.sock`` or ``tcp://host:port``; TLS when
DOCKER_TLS_VERIFY=1 with DOCKER_CERT_PATH). No docker binary is needed.
"""

from __future__ import annotations

import http.client
import json
import os
import re
import ssl
import struct
import sys
import time
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlencode, urlsplit

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "_lib"))
import prockit
import skillkit

NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,127}")
NAME_HINT = "letters, digits, '_', '.', '-'; or a container id"
ACTIONS = ("ps", "inspect", "logs", "stats", "restart", "stop", "start")
WRITES = ("restart", "stop", "start")
MAX_JSON = 4 * 1024 * 1024
MAX_LOG_BYTES = 256 * 1024
MAX_LINE = 4000
MAX_LOG_JSON = 400 * 1024  # the skill's output cap is 512 KB
MAX_CONTAINERS = 200
TIMEOUT = 20.0


class Engine:
    """One Docker Engine endpoint, from DOCKER_HOST."""

    def __init__(self, host: str) -> None:
        parts = urlsplit(host)
        self.host = host
        if parts.scheme == "unix":
            if parts.netloc or not parts.path:
                raise skillkit.Refused(
                    f"DOCKER_HOST {host!r} is not unix:///absolute/path/to/docker.sock"
                )
            self.socket_path: str | None = parts.path
        elif parts.scheme == "tcp":
            if not parts.hostname:
                raise skillkit.Refused(f"DOCKER_HOST {host!r} names no host")
            self.socket_path = None
            self.netloc = (parts.hostname, parts.port or 2375)
        else:
            raise skillkit.Refused(
                f"DOCKER_HOST must be unix:///path/to/docker.sock or tcp://host:port, not {host!r}"
            )

    def connection(self, timeout: float) -> http.client.HTTPConnection:
        if self.socket_path is not None:
            return prockit.UnixHTTPConnection(self.socket_path, timeout)
        host, port = self.netloc
        if os.environ.get("DOCKER_TLS_VERIFY", "") not in ("", "0"):
            certs = Path(os.environ.get("DOCKER_CERT_PATH", "") or Path.home() / ".docker")
            ctx = ssl.create_default_context(cafile=str(certs / "ca.pem"))
            ctx.load_cert_chain(str(certs / "cert.pem"), str(certs / "key.pem"))
            return http.client.HTTPSConnection(host, port, timeout=timeout, context=ctx)
        return http.client.HTTPConnection(host, port, timeout=timeout)

    def call(
        self,
        method: str,
        path: str,
        query: dict[str, Any] | None = None,
        *,
        max_bytes: int = MAX_JSON,
        timeout: float = TIMEOUT,
        ok: tuple[int, ...] = (200,),
    ) -> prockit.Answer:
        version = os.environ.get("DOCKER_API_VERSION", "").strip()
        prefix = f"/v{version}" if re.fullmatch(r"1\.\d{1,3}", version) else ""
        target = f"{prefix}{path}" + (f"?{urlencode(query)}" if query else "")
        with prockit.deadline(timeout + 2):
            answer = prockit.http_call(
                self.connection(timeout), method, target, max_bytes=max_bytes
            )
        if answer.status not in ok:
            raise skillkit.Failed(f"docker engine: {engine_message(answer)}")
        return answer

    def json(self, path: str, query: dict[str, Any] | None = None) -> Any:
        return self.call("GET", path, query).json("the engine", MAX_JSON)


def engine_message(answer: prockit.Answer) -> str:
    return f"{prockit.clip(answer.said() or 'no message', 500)} (HTTP {answer.status})"


def container_of(args: dict[str, Any]) -> str:
    return prockit.check_name(args.get("container"), "container", NAME, NAME_HINT)


def ps(engine: Engine, args: dict[str, Any]) -> dict[str, Any]:
    query: dict[str, Any] = {"all": "1" if args.get("all") else "0"}
    if args.get("name") is not None:
        name = prockit.check_name(args.get("name"), "name", NAME, NAME_HINT)
        query["filters"] = json.dumps({"name": [name]})
    rows = engine.json("/containers/json", query)
    out = []
    for row in rows[:MAX_CONTAINERS]:
        out.append(
            {
                "id": str(row.get("Id", ""))[:12],
                "name": ",".join(n.lstrip("/") for n in row.get("Names") or []),
                "image": row.get("Image"),
                "state": row.get("State"),
                "status": row.get("Status"),
                "created": row.get("Created"),
                "ports": [port_text(p) for p in row.get("Ports") or []],
            }
        )
    return {"containers": out, "count": len(rows), "shown": len(out)}


def port_text(port: dict[str, Any]) -> str:
    inner = f"{port.get('PrivatePort')}/{port.get('Type', 'tcp')}"
    if port.get("PublicPort"):
        return f"{port.get('IP', '')}:{port['PublicPort']}->{inner}"
    return inner


def inspect(engine: Engine, args: dict[str, Any]) -> dict[str, Any]:
    raw = engine.json(f"/containers/{quote(container_of(args))}/json")
    state = raw.get("State") or {}
    config = raw.get("Config") or {}
    host = raw.get("HostConfig") or {}
    nets = (raw.get("NetworkSettings") or {}).get("Networks") or {}
    labels = config.get("Labels") or {}
    return {
        "id": str(raw.get("Id", ""))[:12],
        "name": str(raw.get("Name", "")).lstrip("/"),
        "image": config.get("Image"),
        "image_id": raw.get("Image"),
        "created": raw.get("Created"),
        "state": {
            "status": state.get("Status"),
            "running": state.get("Running"),
            "paused": state.get("Paused"),
            "restarting": state.get("Restarting"),
            "oom_killed": state.get("OOMKilled"),
            "exit_code": state.get("ExitCode"),
            "error": state.get("Error") or None,
            "started_at": state.get("StartedAt"),
            "finished_at": state.get("FinishedAt"),
            "health": (state.get("Health") or {}).get("Status"),
        },
        "restart_count": raw.get("RestartCount"),
        "restart_policy": (host.get("RestartPolicy") or {}).get("Name"),
        "command": [raw.get("Path"), *(raw.get("Args") or [])],
        "tty": bool(config.get("Tty")),
        "ports": (raw.get("NetworkSettings") or {}).get("Ports") or {},
        "networks": {name: (n or {}).get("IPAddress") for name, n in nets.items()},
        "mounts": [
            {
                "type": m.get("Type"),
                "source": m.get("Source"),
                "destination": m.get("Destination"),
                "rw": m.get("RW"),
            }
            for m in (raw.get("Mounts") or [])[:50]
        ],
        "labels": dict(list(labels.items())[:50]),
    }


def demux(data: bytes) -> list[tuple[str, bytes]]:
    """Split the Engine's multiplexed stream: 8-byte headers (stream, 0, 0, 0, size)."""
    out: list[tuple[str, bytes]] = []
    names = {0: "stdin", 1: "stdout", 2: "stderr"}
    pos = 0
    while pos + 8 <= len(data):
        kind, size = data[pos], struct.unpack(">I", data[pos + 4 : pos + 8])[0]
        if kind not in names or data[pos + 1 : pos + 4] != b"\0\0\0":
            raise skillkit.Failed("the engine sent a log stream that is not multiplexed")
        out.append((names[kind], data[pos + 8 : pos + 8 + size]))
        pos += 8 + size
    return out


def since_of(value: object) -> int | None:
    if value is None:
        return None
    if isinstance(value, int) and not isinstance(value, bool) and value >= 0:
        return value
    if isinstance(value, str) and (m := re.fullmatch(r"(\d{1,6})([smhd])", value)):
        return (
            int(time.time())
            - int(m.group(1)) * {"s": 1, "m": 60, "h": 3600, "d": 86400}[m.group(2)]
        )
    raise skillkit.Refused("'since' must be a duration like '15m', '2h', '1d' or unix seconds")


def logs(engine: Engine, args: dict[str, Any]) -> dict[str, Any]:
    name = container_of(args)
    tail = prockit.int_in(args, "tail", 100, 1, 2000)
    info = engine.json(f"/containers/{quote(name)}/json")
    query: dict[str, Any] = {"stdout": "1", "stderr": "1", "tail": str(tail)}
    if args.get("timestamps"):
        query["timestamps"] = "1"
    since = since_of(args.get("since"))
    if since is not None:
        query["since"] = str(since)
    answer = engine.call(
        "GET", f"/containers/{quote(name)}/logs", query, max_bytes=MAX_LOG_BYTES + 8 * tail
    )
    tty = bool((info.get("Config") or {}).get("Tty"))
    frames = [("stdout", answer.body)] if tty else demux(answer.body)
    lines: list[dict[str, str]] = []
    partial: dict[str, str] = {}
    for stream, chunk in frames:
        text = partial.pop(stream, "") + chunk.decode(errors="replace")
        *whole, rest = text.split("\n")
        if rest:
            partial[stream] = rest
        lines += [{"stream": stream, "line": prockit.clip(ln, MAX_LINE)} for ln in whole]
    lines += [{"stream": s, "line": prockit.clip(t, MAX_LINE)} for s, t in partial.items()]
    kept, dropped = prockit.keep_last(lines[-tail:], MAX_LOG_JSON)
    return {
        "container": str(info.get("Name", name)).lstrip("/"),
        "lines": kept,
        "truncated": answer.truncated or dropped,
    }


def stats(engine: Engine, args: dict[str, Any]) -> dict[str, Any]:
    name = container_of(args)
    raw = engine.json(f"/containers/{quote(name)}/stats", {"stream": "false"})
    cpu, pre = raw.get("cpu_stats") or {}, raw.get("precpu_stats") or {}
    cpu_delta = (cpu.get("cpu_usage") or {}).get("total_usage", 0) - (
        pre.get("cpu_usage") or {}
    ).get("total_usage", 0)
    sys_delta = cpu.get("system_cpu_usage", 0) - pre.get("system_cpu_usage", 0)
    online = cpu.get("online_cpus") or len((cpu.get("cpu_usage") or {}).get("percpu_usage") or [])
    cpu_pct = cpu_delta / sys_delta * (online or 1) * 100 if cpu_delta > 0 and sys_delta > 0 else 0
    mem = raw.get("memory_stats") or {}
    detail = mem.get("stats") or {}
    used = mem.get("usage", 0) - detail.get("inactive_file", detail.get("cache", 0))
    limit = mem.get("limit", 0)
    nets = raw.get("networks") or {}
    blk: dict[str, int] = {"read": 0, "write": 0}
    for entry in (raw.get("blkio_stats") or {}).get("io_service_bytes_recursive") or []:
        op = str(entry.get("op", "")).lower()
        if op in blk:
            blk[op] += int(entry.get("value", 0))
    return {
        "container": str(raw.get("name", name)).lstrip("/"),
        "read_at": raw.get("read"),
        "cpu_percent": round(cpu_pct, 2),
        "online_cpus": online,
        "memory_bytes": max(used, 0),
        "memory_limit_bytes": limit,
        "memory_percent": round(used / limit * 100, 2) if limit else None,
        "net_rx_bytes": sum(int(n.get("rx_bytes", 0)) for n in nets.values()),
        "net_tx_bytes": sum(int(n.get("tx_bytes", 0)) for n in nets.values()),
        "block_read_bytes": blk["read"],
        "block_write_bytes": blk["write"],
        "pids": (raw.get("pids_stats") or {}).get("current"),
    }


def change(engine: Engine, args: dict[str, Any], action: str) -> dict[str, Any]:
    name = container_of(args)
    query: dict[str, Any] = {}
    wait = 0
    if action in ("restart", "stop"):
        wait = prockit.int_in(args, "wait_sec", 10, 0, 20)
        query["t"] = str(wait)
    answer = engine.call(
        "POST", f"/containers/{quote(name)}/{action}", query, timeout=wait + 15, ok=(204, 304)
    )
    state = engine.json(f"/containers/{quote(name)}/json").get("State") or {}
    return {
        "container": name,
        "action": action,
        "result": "done" if answer.status == 204 else f"unchanged (already {state.get('Status')})",
        "status": state.get("Status"),
        "running": state.get("Running"),
    }


READS = {"ps": ps, "inspect": inspect, "logs": logs, "stats": stats}


def run(args: dict[str, Any]) -> Any:
    action = prockit.choice(args, "action", ACTIONS)
    engine = Engine(skillkit.env("DOCKER_HOST"))
    if action in WRITES:
        return change(engine, args, action)
    return READS[action](engine, args)


if __name__ == "__main__":
    skillkit.main("docker", run)
