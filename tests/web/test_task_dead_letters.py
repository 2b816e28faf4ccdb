"""Dead-lettered tasks through the real gateway: a flow whose tool node fails on every
try (``retry: {tries: 2}``, no error branch) is listed by ``GET /api/v1/tasks?status=dead``
and ``nexflow tasks dead``; ``retry`` re-queues it from the failed node — it fails again
(the new run is listed) — and once the file it needs exists, a retry completes and the
task is no longer dead. A run that failed without a node exhausting its tries (a bad
input) is not a dead letter."""

from __future__ import annotations

import asyncio
import contextlib
import io
import json
from collections.abc import AsyncIterator, Mapping
from pathlib import Path
from typing import Any

import httpx
import pytest

from nexflow.tasks_cli import main_tasks
from nexflow.testing.harness import GatewayHarness, free_port
from nexflow.tools.base import ToolContext, ToolResult, ToolSpec

TOKEN = "owner-gateway-token-0123456789abcdef"
FLOW = """\
name: needs-file
description: Reads a file that may not be there yet
nodes:
  first: {type: transform, expr: "'start'"}
  read: {type: tool, needs: [first], tool: read_marker_e2e, retry: {tries: 2, backoff_s: 0.1}}
  after: {type: transform, needs: [read], expr: "nodes.read.output.text + '!'"}
"""
FINAL = ("completed", "failed", "cancelled")


class ReadMarker:
    """Reads one file; an error result while it is missing."""

    def __init__(self, path: Path) -> None:
        self.spec = ToolSpec("read_marker_e2e", "test tool: reads a marker file")
        self.path = path
        self.calls = 0

    async def run(self, args: Mapping[str, Any], ctx: ToolContext) -> ToolResult:
        self.calls += 1
        if not self.path.exists():
            return ToolResult(f"error: {self.path.name} does not exist", is_error=True)
        return ToolResult("ok", data={"text": self.path.read_text()})


@pytest.fixture
async def gw(tmp_path: Path) -> AsyncIterator[GatewayHarness]:
    async with GatewayHarness(tmp_path / "home", token=TOKEN) as harness:
        yield harness


async def finished(http: httpx.AsyncClient, run_id: str) -> dict[str, Any]:
    for _ in range(300):
        resp = await http.get(f"/api/v1/tasks/{run_id}")
        assert resp.status_code == 200, resp.text
        task: dict[str, Any] = resp.json()
        if task["status"] in FINAL:
            return task
        await asyncio.sleep(0.1)
    raise AssertionError(f"task {run_id} did not finish")


async def dead_ids(http: httpx.AsyncClient) -> list[str]:
    resp = await http.get("/api/v1/tasks", params={"status": "dead"})
    assert resp.status_code == 200, resp.text
    return [t["id"] for t in resp.json()["tasks"]]


async def retry(http: httpx.AsyncClient, run_id: str) -> str:
    resp = await http.post(f"/api/v1/tasks/{run_id}/control", json={"action": "retry"})
    assert resp.status_code == 200, resp.text
    new_id: str = resp.json()["run_id"]
    assert new_id != run_id
    return new_id


async def cli(*argv: str) -> tuple[int, str]:
    """``nexflow tasks …`` in a thread (blocking urllib), its stdout captured here: not
    with capsys, whose stderr DBOS's log handler would keep after the test."""
    out = io.StringIO()

    def run() -> int:
        with contextlib.redirect_stdout(out):
            return main_tasks(list(argv))

    code = await asyncio.to_thread(run)
    return code, out.getvalue()


async def test_dead_task_listed_retried_until_it_completes(
    gw: GatewayHarness, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert gw.app is not None
    marker = tmp_path / "marker.txt"
    tool = ReadMarker(marker)
    gw.app.tools.builtins.add(tool)
    http = gw.http
    resp = await http.post("/api/v1/flows", json={"name": "needs-file", "yaml": FLOW})
    assert resp.status_code == 200, resp.text
    resp = await http.post("/api/v1/flows/needs-file/runs", json={})
    assert resp.status_code == 201, resp.text
    first = resp.json()["id"]

    task = await finished(http, first)
    assert task["status"] == "failed"
    stages = {s["node"]: s for s in task["stages"]}
    assert stages["read"]["status"] == "failed" and stages["read"]["attempts"] == 2
    assert tool.calls == 2
    resp = await http.get("/api/v1/tasks", params={"status": "dead"})
    (dead,) = resp.json()["tasks"]
    assert (dead["id"], dead["dead_at"], dead["flow"]) == (first, "read", "needs-file")
    assert "marker.txt does not exist" in dead["error"]

    # the CLI asks the running gateway (in a thread: it is blocking urllib)
    monkeypatch.setenv("NEXFLOW_HOME", str(gw.home))
    monkeypatch.setenv("NEXFLOW_WEB__PORT", str(gw.port))
    monkeypatch.setenv("NEXFLOW_GATEWAY_TOKEN", TOKEN)
    monkeypatch.chdir(tmp_path)
    code, out = await cli("dead", "--json")
    assert code == 0
    (listed,) = json.loads(out)
    assert listed["id"] == first and listed["dead_at"] == "read"

    # retried, it fails again at the same node: the new run is a dead letter too
    code, out = await cli("retry", first)
    assert code == 0
    assert f"task {first} re-queued as " in out
    second = out.split(" re-queued as ")[1].split()[0]
    task = await finished(http, second)
    assert task["status"] == "failed" and task["forked_from"] == first
    assert tool.calls == 4
    assert set(await dead_ids(http)) == {first, second}
    code, out = await cli("dead")
    assert code == 0 and second in out

    # the file exists now: the retry completes and is not dead
    marker.write_text("found")
    third = await retry(http, second)
    task = await finished(http, third)
    assert task["status"] == "completed", task
    assert task["output"]["outputs"]["after"] == "found!"
    assert third not in await dead_ids(http)
    assert tool.calls == 5
    # a completed run cannot be retried
    code, out = await cli("retry", third)
    assert code == 1 and "cannot retry" in out


async def test_failed_without_exhausted_node_is_not_dead(gw: GatewayHarness) -> None:
    http = gw.http
    flow = """\
name: budgeted
budget_tokens: 1
nodes:
  a: {type: agent, prompt: "Say hi", tools: []}
  b: {type: agent, needs: [a], prompt: "Again", tools: []}
"""
    resp = await http.post("/api/v1/flows", json={"name": "budgeted", "yaml": flow})
    assert resp.status_code == 200, resp.text
    resp = await http.post("/api/v1/flows/budgeted/runs", json={})
    assert resp.status_code == 201, resp.text
    run_id = resp.json()["id"]
    task = await finished(http, run_id)
    assert task["status"] == "failed" and "token budget exceeded" in task["error"]
    assert await dead_ids(http) == []
    resp = await http.get("/api/v1/tasks", params={"status": "gone"})
    assert resp.status_code == 422


async def test_tasks_cli_without_gateway(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("NEXFLOW_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("NEXFLOW_WEB__PORT", str(free_port()))  # nothing listens there
    monkeypatch.chdir(tmp_path)
    code, out = await cli("dead")
    assert code == 1 and "the gateway is not running" in out
