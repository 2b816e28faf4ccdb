"""``nexflow worker`` processes run the flow runs a gateway with ``flows.run_on: workers``
enqueues, on a real Postgres (a database of its own per test, so DBOS's ``dbos`` schema
is not shared with other tests) and the fake model. The side effect is the ledger skill
of deployment_support.py, once per step's idempotency key.
"""

from __future__ import annotations

import asyncio
import signal
import subprocess
import time
from collections import Counter
from pathlib import Path
from typing import Any

import httpx
import psycopg
import pytest
from deployment_support import AUTH, LEDGER_FLOW, TOKEN, fresh_database
from deployment_support import Deployment as Processes

from nexflow.testing.fake_llm import FakeLLMServer
from nexflow.testing.harness import free_port
from nexflow.testing.postgres import Postgres
from nexflow.testing.process import serve_command, wait_healthy

pytestmark = pytest.mark.slow


class Deployment(Processes):
    """One gateway (enqueue only), any number of workers."""

    def __init__(self, tmp: Path, db: str, llm_base: str) -> None:
        super().__init__(tmp, db, llm_base)
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.gateway: subprocess.Popen[bytes] | None = None

    async def start_gateway(self) -> None:
        config = self.config("gateway", flows={"run_on": "workers", "executor_id": "gw-1"})
        command = [*serve_command(self.port), "--config", str(config)]
        self.gateway = self.spawn("gateway", command, NEXFLOW_GATEWAY_TOKEN=TOKEN)
        await wait_healthy(self.url, self.gateway)

    async def start_worker(self, executor: str) -> subprocess.Popen[bytes]:
        config = self.config(f"worker-{executor}", flows={"executor_id": executor, "sweep_s": 0.5})
        return await self.spawn_worker(f"worker-{executor}", config)

    def client(self) -> httpx.AsyncClient:
        return httpx.AsyncClient(base_url=self.url, headers=AUTH, timeout=30)

    def executors(self, run_id: str) -> dict[str, str]:
        """DBOS's executor id of the run's workflow and of each node workflow."""
        with psycopg.connect(self.db) as conn:
            rows = conn.execute(
                "SELECT workflow_uuid, executor_id FROM dbos.workflow_status "
                "WHERE workflow_uuid = %s OR workflow_uuid LIKE %s",
                (run_id, run_id + ":%"),
            ).fetchall()
        return {str(w): str(e) for w, e in rows}


@pytest.fixture
async def deployment(tmp_path: Path, pg_server: Postgres) -> Any:
    llm = FakeLLMServer()
    dep = Deployment(tmp_path, fresh_database(pg_server.url), await llm.start())
    try:
        await dep.start_gateway()
        async with dep.client() as http:
            resp = await http.post("/api/v1/flows", json={"name": "ledger", "yaml": LEDGER_FLOW})
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
    await dep.appended("kill-second")  # the effect is done; the step still sleeps
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
    await dep.appended("sweep-second")
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
