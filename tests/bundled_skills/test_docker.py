"""The bundled docker skill against a fake Docker Engine (the real API over a unix socket)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from bundled_support import (
    call_skill,
    check_folder,
    failure,
    load,
    refusal,
    run_skill,
    skill_gateway,
)
from fakes_ops import FakeDockerEngine

from nexflow.skills import SkillInputInvalid
from nexflow.skills.isolation import IsolationLevel
from nexflow.skills.result import RunResult


@pytest.fixture
def engine(workspace: Path) -> Iterator[FakeDockerEngine]:
    with FakeDockerEngine(workspace / "d.sock") as fake:
        yield fake


async def docker(
    engine: FakeDockerEngine, ws: Path, payload: dict[str, Any], **kw: Any
) -> RunResult:
    return await run_skill("docker", payload, ws, {"DOCKER_HOST": engine.url}, **kw)


def test_skill_folder() -> None:
    skill = check_folder("docker", {"DOCKER_HOST": "unix:///var/run/docker.sock"})
    # shell: the Docker socket controls the host, so only roles granted shell may use it.
    assert skill.permissions == {"network", "shell"} and skill.env_required == ("DOCKER_HOST",)
    assert "/var/run/docker.sock" in skill.sockets
    effects = skill.declared_effects
    assert effects is not None
    for action in ("restart", "stop", "start"):
        call = effects.for_input({"action": action, "container": "web"})
        assert call.confirm and call.writes and not call.egress
    for action in ("ps", "inspect", "logs", "stats"):
        call = effects.for_input({"action": action})
        assert not (call.confirm or call.writes or call.egress)
    assert effects.for_input({"action": "logs"}).untrusted_output


async def test_ps_over_the_socket_in_the_sandbox(
    engine: FakeDockerEngine, workspace: Path, level: IsolationLevel
) -> None:
    r = await docker(engine, workspace, {"action": "ps"}, level=level)
    assert r.ok, (r.error, r.stderr_tail)
    assert r.data is not None
    names = [c["name"] for c in r.data["containers"]]
    assert names == ["web", "console"]  # running only
    web = r.data["containers"][0]
    assert web["image"] == "nginx:1.27" and web["id"] == "4f1c2a9b8e7d"
    assert web["ports"] == ["0.0.0.0:8080->80/tcp"] and web["state"] == "running"
    assert ("GET", "/containers/json?all=0") in engine.state.requests
    r = await docker(engine, workspace, {"action": "ps", "all": True, "name": "work"})
    assert r.data is not None and [c["name"] for c in r.data["containers"]] == ["worker"]


async def test_inspect_summary_leaves_out_environment(
    engine: FakeDockerEngine, workspace: Path
) -> None:
    r = await docker(engine, workspace, {"action": "inspect", "container": "worker"})
    assert r.ok and r.data is not None
    assert r.data["name"] == "worker" and r.data["image"] == "shop/worker:2"
    assert r.data["state"]["status"] == "exited" and r.data["state"]["exit_code"] == 137
    assert r.data["state"]["health"] == "healthy" and r.data["restart_policy"] == "unless-stopped"
    assert r.data["networks"] == {"bridge": "172.17.0.2"}
    assert r.data["mounts"][0]["destination"] == "/usr/share/nginx/html"
    assert "hunter2" not in r.output and "DB_PASSWORD" not in r.output


async def test_logs_are_demultiplexed_and_tailed(engine: FakeDockerEngine, workspace: Path) -> None:
    r = await docker(engine, workspace, {"action": "logs", "container": "web", "tail": 2})
    assert r.ok and r.data is not None
    assert r.data["lines"] == [
        {"stream": "stderr", "line": "upstream timed out"},
        {"stream": "stdout", "line": "GET /a 404"},
    ]
    assert r.data["truncated"] is False
    logs_call = [p for m, p in engine.state.requests if "/logs" in p][-1]
    assert "tail=2" in logs_call and "stdout=1" in logs_call and "stderr=1" in logs_call
    r = await docker(engine, workspace, {"action": "logs", "container": "console", "since": "15m"})
    assert r.ok and r.data is not None  # a TTY container: raw stream, no frames
    assert [ln["line"] for ln in r.data["lines"]] == ["tty line one", "tty line two"]
    assert "since=" in [p for m, p in engine.state.requests if "/logs" in p][-1]


async def test_log_text_is_capped(engine: FakeDockerEngine, workspace: Path) -> None:
    engine.state.logs["web"] = [(1, "y" * 100_000) for _ in range(5)]
    r = await docker(engine, workspace, {"action": "logs", "container": "web"})
    assert r.ok and r.data is not None
    assert r.data["truncated"] is True
    assert all(len(ln["line"]) <= 4000 for ln in r.data["lines"])
    assert len(r.output) < 300_000
    engine.state.logs["web"] = [(2, "\x01" * 3000) for _ in range(100)]  # 6x once escaped
    r = await docker(engine, workspace, {"action": "logs", "container": "web"})
    assert r.ok and r.data is not None, r.error
    assert r.data["truncated"] is True and 0 < len(r.data["lines"]) < 100
    assert len(r.output) < 512 * 1024


async def test_stats_snapshot(engine: FakeDockerEngine, workspace: Path) -> None:
    r = await docker(engine, workspace, {"action": "stats", "container": "web"})
    assert r.ok and r.data is not None
    assert r.data["cpu_percent"] == 20.0  # 0.5e9 / 10e9 * 4 cpus
    assert r.data["memory_bytes"] == 50_000_000 and r.data["memory_percent"] == 5.0
    assert r.data["net_rx_bytes"] == 1024 and r.data["net_tx_bytes"] == 512
    assert (r.data["block_read_bytes"], r.data["block_write_bytes"], r.data["pids"]) == (
        4096,
        8192,
        7,
    )


async def test_restart_stop_start_change_the_engine(
    engine: FakeDockerEngine, workspace: Path
) -> None:
    r = await docker(engine, workspace, {"action": "restart", "container": "web", "wait_sec": 3})
    assert r.ok and r.data is not None
    assert r.data == {
        "container": "web",
        "action": "restart",
        "result": "done",
        "status": "running",
        "running": True,
    }
    assert engine.posts() == ["/containers/web/restart?t=3"]
    assert engine.container("web")["RestartCount"] == 3
    r = await docker(engine, workspace, {"action": "stop", "container": "web"})
    assert r.ok and r.data is not None and r.data["status"] == "exited"
    r = await docker(engine, workspace, {"action": "stop", "container": "web"})
    assert r.ok and r.data is not None and r.data["result"] == "unchanged (already exited)"
    r = await docker(engine, workspace, {"action": "start", "container": "web"})
    assert r.ok and r.data is not None and r.data["running"] is True


async def test_tcp_docker_host(workspace: Path) -> None:
    with FakeDockerEngine(None) as tcp:
        assert tcp.url.startswith("tcp://127.0.0.1:")
        r = await docker(tcp, workspace, {"action": "inspect", "container": "web"})
    assert r.ok and r.data is not None and r.data["state"]["running"] is True
    assert tcp.state.requests == [("GET", "/containers/web/json")]


@pytest.mark.parametrize(
    ("payload", "why"),
    [
        ({"action": "logs", "container": "-f"}, "starts with '-'"),
        ({"action": "restart", "container": "--all"}, "starts with '-'"),
        ({"action": "inspect", "container": "../images/json"}, "is not a valid name"),
        ({"action": "inspect", "container": "web?x=1"}, "is not a valid name"),
        ({"action": "inspect"}, "'container' must be a non-empty string"),
        ({"action": "logs", "container": "web", "tail": 0}, "between 1 and 2000"),
        ({"action": "logs", "container": "web", "since": "yesterday"}, "'since' must be"),
        ({"action": "stop", "container": "web", "wait_sec": 999}, "between 0 and 20"),
    ],
)
async def test_bad_input_is_refused(
    engine: FakeDockerEngine, workspace: Path, payload: dict, why: str
) -> None:
    r = await docker(engine, workspace, payload)
    assert why in refusal(r)
    assert engine.posts() == []


async def test_engine_errors_are_clear(engine: FakeDockerEngine, workspace: Path) -> None:
    r = await docker(engine, workspace, {"action": "inspect", "container": "nope"})
    assert "docker engine: No such container: nope (HTTP 404)" in failure(r)
    r = await docker(engine, workspace, {"action": "restart", "container": "nope"})
    assert "No such container: nope" in failure(r)
    gone = {"DOCKER_HOST": f"unix://{workspace}/missing.sock"}
    r = await run_skill("docker", {"action": "ps"}, workspace=workspace, secrets=gone)
    assert f"cannot connect to {workspace}/missing.sock" in failure(r)
    relative = {"DOCKER_HOST": "unix://var/run/docker.sock"}
    r = await run_skill("docker", {"action": "ps"}, workspace=workspace, secrets=relative)
    assert "is not unix:///absolute/path/to/docker.sock" in refusal(r)
    odd = {"DOCKER_HOST": "ssh://root@host"}
    r = await run_skill("docker", {"action": "ps"}, workspace=workspace, secrets=odd)
    assert "DOCKER_HOST must be unix:///path/to/docker.sock or tcp://host:port" in refusal(r)


async def test_schema_and_settings(workspace: Path) -> None:
    with pytest.raises(SkillInputInvalid, match="not one of"):
        await run_skill(
            "docker",
            {"action": "rm", "container": "web"},
            workspace=workspace,
            secrets={"DOCKER_HOST": "unix:///x"},
        )
    skill = load("docker", {})
    assert not skill.available and "DOCKER_HOST" in (skill.reason or "")


# -- through the gateway ----------------------------------------------------------------


async def test_ps_through_the_gateway(home: Path) -> None:
    sock = home / "workspace" / "d.sock"
    sock.parent.mkdir(parents=True)
    with FakeDockerEngine(sock) as engine:
        async with skill_gateway(home, {"docker": {"DOCKER_HOST": engine.url}}) as gw:
            reply, tool, card = await call_skill(gw, "docker", {"action": "ps", "all": True})
    assert card is None
    assert "nginx:1.27" in tool and "worker" in tool
    assert "nginx:1.27" in reply["reply"]


@pytest.mark.parametrize("approve", [True, False], ids=["confirmed", "declined"])
async def test_restart_waits_for_the_user(home: Path, approve: bool) -> None:
    sock = home / "workspace" / "d.sock"
    sock.parent.mkdir(parents=True)
    with FakeDockerEngine(sock) as engine:
        async with skill_gateway(home, {"docker": {"DOCKER_HOST": engine.url}}) as gw:
            payload = {"action": "restart", "container": "web"}
            _, tool, card = await call_skill(gw, "docker", payload, approve=approve)
            assert gw.app is not None
            audit = await gw.app.storage.audit_tail(50)
    assert card is not None and "restart" in card["detail"] and "web" in card["detail"]
    runs = [a for a in audit if a["kind"] == "skill_run"]
    if approve:
        assert engine.posts() == ["/containers/web/restart?t=10"]
        assert engine.container("web")["RestartCount"] == 3
        assert '"result": "done"' in tool
        assert runs[0]["outcome"] == "ran"
    else:
        assert engine.posts() == []
        assert engine.container("web")["RestartCount"] == 2
        assert "declined" in tool
        assert runs[0]["outcome"] == "declined"
