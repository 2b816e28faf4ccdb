"""``nexflow worker`` processes run the flow runs a gateway with ``flows.run_on: workers``
enqueues, on a real Postgres (a database of its own per test, so DBOS's ``dbos`` schema
is not shared with other tests) and the fake model.

The side effect is a small test skill (``ledger-append``): it appends ``<tag> <key>`` to
a file in the shared workspace unless a line with its ``NEXFLOW_IDEMPOTENCY_KEY`` is
there already, then sleeps for ``sleep`` seconds (the window in which the test SIGKILLs
the worker: the effect is done, the step's result is not stored). Gateways and workers
share the workspace directories, as a deployment shares one volume.
"""

from __future__ import annotations

import asyncio
import signal
import subprocess
import sys
import time
import uuid
from collections import Counter
from pathlib import Path
from typing import Any

import httpx
import psycopg
import pytest
import yaml

from nexflow.testing.fake_llm import FakeLLMServer
from nexflow.testing.harness import free_port
from nexflow.testing.postgres import Postgres
from nexflow.testing.process import gateway_env, serve_command, wait_healthy

pytestmark = pytest.mark.slow

TOKEN = "owner-gateway-token-0123456789abcdef"
FLOW = """\
name: ledger
inputs:
  tag: {type: string, required: true}
  sleep: {type: number, default: 0}
nodes:
  first:
    type: tool
    tool: run_skill
    args: {name: ledger-append, input: {tag: "${inputs.tag}-first"}}
  second:
    type: tool
    tool: run_skill
    needs: [first]
    args: {name: ledger-append, input: {tag: "${inputs.tag}-second", sleep: "${inputs.sleep}"}}
"""
SKILL = """\
---
name: ledger-append
description: Append a tag to ledger.txt once per idempotency key.
location: ./run.py
---
# ledger-append
"""
SCRIPT = """\
import json, os, sys, time

data = json.loads(os.environ.get("SKILL_INPUT") or sys.stdin.read() or "{}")
key = os.environ.get("NEXFLOW_IDEMPOTENCY_KEY", "")
path = os.path.join(os.environ["NEXFLOW_WORKSPACE"], "ledger.txt")
seen = open(path).read().splitlines() if os.path.exists(path) else []
if not key or not any(line.endswith(" " + key) for line in seen):
    with open(path, "a") as out:
        out.write(data["tag"] + " " + key + "\\n")
time.sleep(float(data.get("sleep") or 0))
print(json.dumps({"tag": data["tag"], "key": key, "pid": os.getpid()}))
"""


def fresh_database(server_url: str) -> str:
    """An empty database of its own on the test server (DBOS's schema included)."""
    name = f"w_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(server_url, autocommit=True) as conn:
        conn.execute(f"CREATE DATABASE {name}")
    return server_url.rsplit("/", 1)[0] + "/" + name


class Deployment:
    """One gateway, any number of workers, one Postgres database, shared workspaces."""

    def __init__(self, tmp: Path, db: str, llm_base: str) -> None:
        self.tmp, self.db, self.llm_base = tmp, db, llm_base
        self.shared = tmp / "shared"
        skill = tmp / "skills" / "ledger-append"
        skill.mkdir(parents=True)
        (skill / "SKILL.md").write_text(SKILL)
        (skill / "run.py").write_text(SCRIPT)
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.procs: list[subprocess.Popen[bytes]] = []
        self.gateway: subprocess.Popen[bytes] | None = None

    def config(self, name: str, flows: dict[str, Any]) -> Path:
        path = self.tmp / f"{name}.yml"
        path.write_text(
            yaml.safe_dump(
                {
                    "storage": {"url": self.db},
                    "workspace": str(self.shared / "workspace"),
                    "workspaces": {"root": str(self.shared / "workspaces")},
                    "skills": {"dirs": [str(self.tmp / "skills")], "watch": False},
                    "flows": {"queue_poll_s": 0.05, "per_user_concurrency": None, **flows},
                }
            )
        )
        return path

    def spawn(self, name: str, command: list[str], **env: str) -> subprocess.Popen[bytes]:
        log = (self.tmp / f"{name}.log").open("ab")
        with log:
            proc = subprocess.Popen(
                command,
                env=gateway_env(self.tmp / f"home-{name}", self.llm_base, **env),
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        self.procs.append(proc)
        return proc

    async def start_gateway(self) -> None:
        config = self.config("gateway", {"run_on": "workers", "executor_id": "gw-1"})
        command = [*serve_command(self.port), "--config", str(config)]
        self.gateway = self.spawn("gateway", command, NEXFLOW_GATEWAY_TOKEN=TOKEN)
        await wait_healthy(self.url, self.gateway)

    async def start_worker(self, executor: str) -> subprocess.Popen[bytes]:
        config = self.config(f"worker-{executor}", {"executor_id": executor, "sweep_s": 0.5})
        health = free_port()
        command = [sys.executable, "-m", "nexflow", "worker", "--config", str(config)]
        proc = self.spawn(
            f"worker-{executor}",
            [*command, "--health-port", str(health), "--health-host", "127.0.0.1"],
        )
        await wait_healthy(f"http://127.0.0.1:{health}", proc)
        return proc

    def log(self, name: str) -> str:
        return (self.tmp / f"{name}.log").read_text(errors="replace")

    def client(self) -> httpx.AsyncClient:
        auth = {"Authorization": f"Bearer {TOKEN}"}
        return httpx.AsyncClient(base_url=self.url, headers=auth, timeout=30)

    def ledger(self) -> list[str]:
        lines: list[str] = []
        for path in sorted(self.shared.rglob("ledger.txt")):
            lines += path.read_text().splitlines()
        return lines

    def executors(self, run_id: str) -> dict[str, str]:
        """DBOS's executor id of the run's workflow and of each node workflow."""
        with psycopg.connect(self.db) as conn:
            rows = conn.execute(
                "SELECT workflow_uuid, executor_id FROM dbos.workflow_status "
                "WHERE workflow_uuid = %s OR workflow_uuid LIKE %s",
                (run_id, run_id + ":%"),
            ).fetchall()
        return {str(w): str(e) for w, e in rows}

    def stop(self) -> None:
        for proc in self.procs:
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
        for proc in self.procs:
            try:
                proc.wait(20)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(10)


@pytest.fixture
async def deployment(tmp_path: Path, pg_server: Postgres) -> Any:
    llm = FakeLLMServer()
    dep = Deployment(tmp_path, fresh_database(pg_server.url), await llm.start())
    try:
        await dep.start_gateway()
        async with dep.client() as http:
            resp = await http.post("/api/v1/flows", json={"name": "ledger", "yaml": FLOW})
            assert resp.status_code == 200, resp.text
        yield dep
    finally:
        dep.stop()
        await llm.stop()


async def start_run(dep: Deployment, tag: str, sleep: float = 0) -> str:
    async with dep.client() as http:
        resp = await http.post(
            "/api/v1/flows/ledger/runs", json={"args": {"tag": tag, "sleep": sleep}}
        )
        assert resp.status_code == 201, resp.text
        return str(resp.json()["id"])


async def settle(dep: Deployment, run_id: str, within: float) -> dict[str, Any]:
    deadline = time.monotonic() + within
    task: dict[str, Any] = {}
    async with dep.client() as http:
        while time.monotonic() < deadline:
            resp = await http.get(f"/api/v1/tasks/{run_id}")
            assert resp.status_code == 200, resp.text
            task = resp.json()
            if task["status"] in ("completed", "failed", "cancelled"):
                return task
            await asyncio.sleep(0.1)
    raise AssertionError(task)


async def appended(dep: Deployment, tag: str, within: float = 30) -> None:
    deadline = time.monotonic() + within
    while not any(line.startswith(tag + " ") for line in dep.ledger()):
        assert time.monotonic() < deadline, dep.ledger()
        await asyncio.sleep(0.01)


def kill(proc: subprocess.Popen[bytes]) -> None:
    proc.send_signal(signal.SIGKILL)
    assert proc.wait(10) == -signal.SIGKILL


def once_each(dep: Deployment, tag: str) -> None:
    tags = Counter(line.split(" ", 1)[0] for line in dep.ledger() if line.startswith(tag + "-"))
    assert tags == {f"{tag}-first": 1, f"{tag}-second": 1}, dep.ledger()


async def test_a_run_started_at_the_gateway_runs_on_the_worker(deployment: Deployment) -> None:
    dep = deployment
    run_id = await start_run(dep, "solo")
    await asyncio.sleep(1.5)
    async with dep.client() as http:  # no worker yet: the gateway only enqueued it
        assert (await http.get(f"/api/v1/tasks/{run_id}")).json()["status"] == "queued"
    assert dep.ledger() == []
    worker = await dep.start_worker("worker-a")
    task = await settle(dep, run_id, within=60)
    assert task["status"] == "completed", task
    once_each(dep, "solo")
    # DBOS says who ran it: the run and both node workflows, on the worker
    assert dep.executors(run_id) == {
        run_id: "worker-a",
        f"{run_id}:first": "worker-a",
        f"{run_id}:second": "worker-a",
    }
    worker.send_signal(signal.SIGTERM)  # graceful stop
    assert worker.wait(30) == 0
    log = dep.log("worker-worker-a")
    assert '"worker_started"' in log and '"worker_stopped"' in log
    assert "gw-1" not in dep.executors(run_id).values()


async def test_a_worker_killed_mid_step_is_recovered_with_the_same_id(
    deployment: Deployment,
) -> None:
    dep = deployment
    worker = await dep.start_worker("worker-a")
    run_id = await start_run(dep, "kill", sleep=3)
    await appended(dep, "kill-second")  # the effect is done; the step still sleeps
    kill(worker)
    with psycopg.connect(dep.db) as conn:
        row = conn.execute(
            "SELECT status, executor_id FROM dbos.workflow_status WHERE workflow_uuid = %s",
            (f"{run_id}:second",),
        ).fetchone()
    assert row == ("PENDING", "worker-a")  # killed mid-step, nothing recorded
    await dep.start_worker("worker-a")  # the same id: DBOS recovers its runs
    task = await settle(dep, run_id, within=60)
    assert task["status"] == "completed", task
    stages = {s["node"]: s for s in task["stages"]}
    assert stages["second"]["attempts"] == 1  # the same step again, with the same key
    once_each(dep, "kill")
    # all on the worker: the gateway never dequeues, not even a recovered node workflow
    # (DBOS puts those on its internal queue, which the gateway's engine pins shut)
    assert set(dep.executors(run_id).values()) == {"worker-a"}


async def test_another_worker_sweeps_a_dead_workers_runs(deployment: Deployment) -> None:
    dep = deployment
    worker = await dep.start_worker("worker-a")
    run_id = await start_run(dep, "sweep", sleep=3)
    await appended(dep, "sweep-second")
    kill(worker)  # worker-a never comes back
    await dep.start_worker("worker-b")
    task = await settle(dep, run_id, within=60)
    assert task["status"] == "completed", task
    once_each(dep, "sweep")
    assert '"flows_swept"' in dep.log("worker-worker-b")
    assert "worker-a" in dep.log("worker-worker-b")
    # the run and the interrupted node finished on worker-b, not on the gateway
    assert dep.executors(run_id) == {
        run_id: "worker-b",
        f"{run_id}:first": "worker-a",
        f"{run_id}:second": "worker-b",
    }
