"""A flow step on a ``nexflow worker`` calls ``reminder_add``: the worker's paused
reminder service writes the job to the shared table, the gateway's scheduler (idle until
then) finds it by its periodic look, fires it once and queues it on the shared outbox.
Real processes on a real Postgres (a database of its own), the fake model."""

from __future__ import annotations

import asyncio
import subprocess
import time
from pathlib import Path
from typing import Any

import httpx
import psycopg
import pytest
from deployment_support import AUTH, TOKEN, Deployment, fresh_database

from nexflow.testing.fake_llm import FakeLLMServer
from nexflow.testing.harness import free_port
from nexflow.testing.postgres import Postgres
from nexflow.testing.process import serve_command, wait_healthy

pytestmark = pytest.mark.slow

WAKE_S = 0.5
OUTBOX_ROWS = "SELECT payload FROM outbox WHERE payload LIKE %s"
REMIND_FLOW = """\
name: remind
nodes:
  add:
    type: tool
    tool: reminder_add
    args: {text: "drink water", in_minutes: 0.05}
"""


def rows(db: str, sql: str, *args: Any) -> list[tuple[Any, ...]]:
    with psycopg.connect(db) as conn:
        return list(conn.execute(sql, args or None).fetchall())


@pytest.fixture
async def dep(tmp_path: Path, pg_server: Postgres) -> Any:
    llm = FakeLLMServer()
    dep = Deployment(tmp_path, fresh_database(pg_server.url), await llm.start())
    try:
        yield dep
    finally:
        dep.stop()
        await llm.stop()


async def test_a_reminder_added_on_a_worker_fires_once_on_the_gateway(dep: Deployment) -> None:
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    timing = {"scheduler_wake_s": WAKE_S}
    config = dep.config(
        "gateway", flows={"run_on": "workers", "executor_id": "gw-1"}, replicas=timing
    )
    gateway: subprocess.Popen[bytes] = dep.spawn(
        "gateway", [*serve_command(port), "--config", str(config)], NEXFLOW_GATEWAY_TOKEN=TOKEN
    )
    await wait_healthy(url, gateway)
    worker_config = dep.config("worker", flows={"executor_id": "worker-a"}, replicas=timing)
    await dep.spawn_worker("worker", worker_config)
    async with httpx.AsyncClient(base_url=url, headers=AUTH, timeout=30) as http:
        resp = await http.post("/api/v1/flows", json={"name": "remind", "yaml": REMIND_FLOW})
        assert resp.status_code == 200, resp.text
        resp = await http.post("/api/v1/flows/remind/runs", json={"args": {}})
        assert resp.status_code == 201, resp.text
        run_id = str(resp.json()["id"])
        deadline = time.monotonic() + 60
        while (task := (await http.get(f"/api/v1/tasks/{run_id}")).json())["status"] not in (
            "completed",
            "failed",
            "cancelled",
        ):
            assert time.monotonic() < deadline, task
            await asyncio.sleep(0.1)
    assert task["status"] == "completed", task
    executors = rows(
        dep.db, "SELECT executor_id FROM dbos.workflow_status WHERE workflow_uuid = %s", run_id
    )
    assert executors == [("worker-a",)]
    # fires ~3 s after the step ran, within WAKE_S of that on the gateway
    deadline = time.monotonic() + 3 + WAKE_S + 10
    while not (queued := rows(dep.db, OUTBOX_ROWS, "%drink water%")):
        assert time.monotonic() < deadline, dep.log("gateway")
        await asyncio.sleep(0.1)
    await asyncio.sleep(WAKE_S * 4)  # no second fire from either process
    queued = rows(dep.db, OUTBOX_ROWS, "%drink water%")
    assert len(queued) == 1 and "⏰ Reminder: drink water" in queued[0][0]
    assert rows(dep.db, "SELECT id FROM reminder_jobs") == []
