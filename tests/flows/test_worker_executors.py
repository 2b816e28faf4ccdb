"""Executor presence and the dead-executor sweep (``nexflow.flows.executors``) on a real
Postgres, the ``flows.run_on`` setting, and ``nexflow worker`` refusing SQLite."""

from __future__ import annotations

import os
import subprocess
import sys
import uuid
from pathlib import Path

import psycopg
import pytest
from pydantic import ValidationError

from nexflow.config.model import FlowsConfig
from nexflow.flows.executors import ExecutorPresence, dead_executors
from nexflow.testing.postgres import Postgres


@pytest.fixture
def pg_db(pg_server: Postgres) -> str:
    """A database of its own with a stand-in for DBOS's ``dbos.workflow_status``."""
    name = f"x_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(pg_server.url, autocommit=True) as conn:
        conn.execute(f"CREATE DATABASE {name}")
    url = pg_server.url.rsplit("/", 1)[0] + "/" + name
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("CREATE SCHEMA dbos")
        conn.execute(
            "CREATE TABLE dbos.workflow_status "
            "(workflow_uuid TEXT PRIMARY KEY, status TEXT, executor_id TEXT)"
        )
        for wf, status, executor in [
            ("r1", "PENDING", "me"),
            ("r2", "PENDING", "alive"),
            ("r3", "PENDING", "gone"),
            ("r4", "SUCCESS", "finished"),  # nothing pending: never looked at
            ("r5", "ENQUEUED", None),
        ]:
            conn.execute(
                "INSERT INTO dbos.workflow_status VALUES (%s, %s, %s)", (wf, status, executor)
            )
    return url


async def test_dead_executors_are_those_without_a_live_presence(pg_db: str) -> None:
    me, alive = ExecutorPresence(pg_db, "me"), ExecutorPresence(pg_db, "alive")
    assert await me.hold() and await alive.hold()
    try:
        assert await dead_executors(pg_db, "me") == ["gone"]
        await alive.release()  # its process ended: Postgres freed the lock
        assert sorted(await dead_executors(pg_db, "me")) == ["alive", "gone"]
    finally:
        await me.release()
        await alive.release()


async def test_a_second_process_with_the_same_id_does_not_get_the_presence(pg_db: str) -> None:
    first, second = ExecutorPresence(pg_db, "twin"), ExecutorPresence(pg_db, "twin")
    assert await first.hold()
    try:
        assert not await second.hold(wait_s=0.3)
    finally:
        await first.release()
    assert await second.hold(wait_s=0.3)  # the first is gone: the restart takes it
    await second.release()


async def test_no_dbos_schema_means_nothing_to_sweep(pg_server: Postgres) -> None:
    name = f"x_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(pg_server.url, autocommit=True) as conn:
        conn.execute(f"CREATE DATABASE {name}")
    assert await dead_executors(pg_server.url.rsplit("/", 1)[0] + "/" + name, "me") == []


def test_run_on_defaults_to_the_gateway() -> None:
    assert FlowsConfig().run_on == "gateway"
    assert FlowsConfig(run_on="workers").run_on == "workers"
    with pytest.raises(ValidationError):
        FlowsConfig(run_on="elsewhere")  # type: ignore[arg-type]


def test_worker_refuses_sqlite_storage(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("NEXFLOW_")}
    env.update({"NEXFLOW_HOME": str(tmp_path / "home"), "NEXFLOW_LLM__OLLAMA__PROBE": "false"})
    out = subprocess.run(
        [sys.executable, "-m", "nexflow", "worker"],
        capture_output=True,
        text=True,
        env=env,
        cwd=tmp_path,
        timeout=60,
        check=False,
    )
    assert out.returncode == 78, out.stderr
    assert "needs storage on Postgres" in out.stderr and "Traceback" not in out.stderr


async def test_a_gateway_that_hands_runs_to_workers_needs_postgres(tmp_path: Path) -> None:
    from nexflow.flows.errors import EngineUnavailable
    from nexflow.testing.harness import GatewayHarness

    env = {"NEXFLOW_FLOWS__RUN_ON": "workers"}
    async with GatewayHarness(tmp_path / "home", env=env) as gw:
        assert gw.app is not None and gw.app.flows is not None
        with pytest.raises(EngineUnavailable, match="needs Postgres"):
            await gw.app.flows.engine()
