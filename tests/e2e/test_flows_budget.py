"""A runaway flow stops at its token budget through the gateway (scripted model, which
reports usage): a chain of agent nodes with a small ``budget_tokens`` fails after the
first node with a clear error, and the later agent nodes never call the model;
``flows.default_budget_tokens`` caps a flow that sets none, and a flow's own budget
wins over the default. (Flows are DAGs, so a loop of agents is written as a chain.)"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from nexflow.testing.fake_llm import Reply
from nexflow.testing.harness import GatewayHarness

TOKEN = "owner-gateway-token-0123456789abcdef"
FINAL = ("completed", "failed", "cancelled")


def chain(name: str, budget: int | None) -> str:
    head = f"name: {name}\n" + (f"budget_tokens: {budget}\n" if budget is not None else "")
    return head + (
        "nodes:\n"
        '  think: {type: agent, prompt: "Think about it", tools: []}\n'
        '  rethink: {type: agent, needs: [think], prompt: "Think again", tools: []}\n'
        '  again: {type: agent, needs: [rethink], prompt: "And again", tools: []}\n'
    )


@pytest.fixture
async def gw(tmp_path: Path) -> AsyncIterator[GatewayHarness]:
    path = tmp_path / "config.yml"
    path.write_text(yaml.safe_dump({"flows": {"default_budget_tokens": 20}}))
    async with GatewayHarness(tmp_path / "home", token=TOKEN, config_file=path) as harness:
        yield harness


async def run_flow(http: httpx.AsyncClient, name: str, text: str) -> dict[str, Any]:
    resp = await http.post("/api/v1/flows", json={"name": name, "yaml": text})
    assert resp.status_code == 200, resp.text
    resp = await http.post(f"/api/v1/flows/{name}/runs", json={})
    assert resp.status_code == 201, resp.text
    run_id = resp.json()["id"]
    for _ in range(300):
        resp = await http.get(f"/api/v1/tasks/{run_id}")
        task: dict[str, Any] = resp.json()
        if task["status"] in FINAL:
            return task
        await asyncio.sleep(0.1)
    raise AssertionError(f"{name} did not finish")


def script(gw: GatewayHarness) -> None:
    for i in range(3):
        gw.llm.push(Reply(text=f"thought {i} " + "and more words " * 20))


def assert_stopped_after_first(gw: GatewayHarness, task: dict[str, Any], budget: int) -> None:
    assert task["status"] == "failed", task
    assert task["error"].startswith("token budget exceeded: used "), task["error"]
    assert task["error"].endswith(f" of {budget}")
    stages = {s["node"]: s for s in task["stages"]}
    assert stages["think"]["status"] == "completed"
    assert stages["think"]["tokens_in"] + stages["think"]["tokens_out"] > budget
    assert stages["rethink"]["status"] == "pending" and stages["again"]["status"] == "pending"
    assert len(gw.llm.requests) == 1  # the later agent nodes never called the model


async def test_runaway_chain_stops_at_its_budget(gw: GatewayHarness) -> None:
    script(gw)
    task = await run_flow(gw.http, "runaway", chain("runaway", 30))
    assert_stopped_after_first(gw, task, 30)


async def test_default_budget_applies_when_the_flow_sets_none(gw: GatewayHarness) -> None:
    script(gw)
    task = await run_flow(gw.http, "unbounded", chain("unbounded", None))
    assert_stopped_after_first(gw, task, 20)


async def test_own_budget_wins_over_the_default(gw: GatewayHarness) -> None:
    script(gw)
    task = await run_flow(gw.http, "roomy", chain("roomy", 1_000_000))
    assert task["status"] == "completed", task
    assert len(gw.llm.requests) == 3
    assert task["tokens_in"] + task["tokens_out"] > 20
