"""Priorities through the gateway: with ``flows.concurrency: 1``, while a slow run holds
the only slot, three priority-1 runs and then one priority-5 run are queued with
``POST /api/v1/flows/{name}/runs``; the priority-5 run starts before every queued
priority-1 run. Order is judged by the runs' start times (their first stage's
``started_at``), never by creation order: DBOS on SQLite keeps ``created_at`` at
1-second resolution."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from nexflow.testing.harness import GatewayHarness

TOKEN = "owner-gateway-token-0123456789abcdef"
SLOW = """\
name: slow
nodes:
  nap: {type: wait, seconds: 1.5}
"""
QUICK = """\
name: quick
inputs:
  label: {type: string, required: true}
nodes:
  go: {type: transform, expr: "inputs.label"}
"""


@pytest.fixture
async def gw(tmp_path: Path) -> AsyncIterator[GatewayHarness]:
    path = tmp_path / "config.yml"
    path.write_text(yaml.safe_dump({"flows": {"concurrency": 1}}))
    async with GatewayHarness(tmp_path / "home", token=TOKEN, config_file=path) as harness:
        yield harness


async def start(http: httpx.AsyncClient, name: str, priority: int, **args: Any) -> str:
    resp = await http.post(f"/api/v1/flows/{name}/runs", json={"args": args, "priority": priority})
    assert resp.status_code == 201, resp.text
    run_id: str = resp.json()["id"]
    return run_id


async def task_of(http: httpx.AsyncClient, run_id: str) -> dict[str, Any]:
    resp = await http.get(f"/api/v1/tasks/{run_id}")
    assert resp.status_code == 200, resp.text
    task: dict[str, Any] = resp.json()
    return task


async def until(http: httpx.AsyncClient, run_id: str, states: tuple[str, ...]) -> dict[str, Any]:
    for _ in range(300):
        task = await task_of(http, run_id)
        if task["status"] in states:
            return task
        await asyncio.sleep(0.05)
    raise AssertionError(f"{run_id} never reached {states}")


async def test_priority_five_overtakes_queued_priority_one(gw: GatewayHarness) -> None:
    http = gw.http
    for name, text in (("slow", SLOW), ("quick", QUICK)):
        resp = await http.post("/api/v1/flows", json={"name": name, "yaml": text})
        assert resp.status_code == 200, resp.text
    slow = await start(http, "slow", 3)
    await until(http, slow, ("running", "waiting"))  # it holds the only slot now
    low = [await start(http, "quick", 1, label=f"low-{i}") for i in range(3)]
    urgent = await start(http, "quick", 5, label="urgent")
    for run_id in (*low, urgent):
        queued = await task_of(http, run_id)
        assert queued["status"] == "queued", queued  # still behind the slow run
        assert queued["priority"] == (5 if run_id == urgent else 1)

    done = {r: await until(http, r, ("completed", "failed")) for r in (slow, *low, urgent)}
    assert all(t["status"] == "completed" for t in done.values()), done
    started = {r: t["stages"][0]["started_at"] for r, t in done.items()}
    assert all(isinstance(s, float) for s in started.values()), started
    slow_end = done[slow]["stages"][0]["finished_at"]
    assert started[urgent] >= slow_end  # it waited for the slot ...
    assert started[urgent] < min(started[r] for r in low)  # ... and went first
