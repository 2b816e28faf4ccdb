"""SIGKILL a real ``nexflow serve`` 10 times while flow runs are in flight, restarting it
each time on the same home and ``flows.executor_id``: every run completes, every node's
side effect happened exactly once per run, and the runs' statuses over HTTP agree.

The side effect is the built-in ``memory_save`` tool, which appends one bullet to the
owner's daily note (a file) and indexes it: a step run again that saved again would show
as a second bullet. The flow (saved and started over HTTP) has a root tool node, a fork
into two parallel tool nodes and an agent node (the scripted model), a merge, a durable
wait and a last tool node that uses the agent's output; four runs, two more after the
third restart. Every other kill comes at a seeded random moment after the gateway
answers its health check (``FLOWS_KILL_SEED``: the engine's launch, recovery, a wave,
the wait); the others come the moment a fact lands in a note, before the host has
stored the tool's result: the step runs again after the restart with the same key,
and only the key mark in the note (``ToolContext.idempotency_key``) keeps the fact from
being saved twice. Without it, each of four runs of this test found 29 facts for 24.
"""

from __future__ import annotations

import asyncio
import os
import random
import re
import signal
import subprocess
import time
from collections import Counter
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from nexflow.testing.fake_llm import FakeLLMServer, Reply
from nexflow.testing.harness import free_port
from nexflow.testing.process import db_rows, gateway_env, serve_command, wait_healthy

pytestmark = pytest.mark.slow

TOKEN = "owner-gateway-token-0123456789abcdef"
EXECUTOR = "gw-sigkill-1"
KILLS = 10
FIRST_RUNS, LATER_RUNS = 4, 2  # the later ones are started after the third restart
EFFECT_NODES = ("first", "left", "right", "last")  # memory_save nodes
HOST_NODES = (*EFFECT_NODES, "think")  # nodes whose result the host stores by key
FLOW = """\
name: ledger
inputs:
  tag: {type: string, required: true}
nodes:
  first: {type: tool, tool: memory_save, args: {text: "fx-${inputs.tag}-first"}}
  split: {type: fork, needs: [first]}
  left: {type: tool, tool: memory_save, needs: [split], args: {text: "fx-${inputs.tag}-left"}}
  right: {type: tool, tool: memory_save, needs: [split], args: {text: "fx-${inputs.tag}-right"}}
  think: {type: agent, needs: [split], prompt: "note ${inputs.tag}", tools: []}
  join: {type: merge, needs: [left, right, think], strategy: all}
  nap: {type: wait, seconds: 0.3, needs: [join]}
  last:
    type: tool
    tool: memory_save
    needs: [nap]
    args: {text: "fx-${inputs.tag}-last after ${nodes.think.output}"}
"""
BULLET = re.compile(r"^- fx-(\w+)-(first|left|right|last)\b", re.MULTILINE)


def slow_echo(request: dict[str, Any]) -> Reply:
    user = next(m for m in reversed(request["messages"]) if m.get("role") == "user")
    return Reply(text=f"echo {user['content']}", delay_s=0.2)


class Gateway:
    """Starts, kills and restarts ``nexflow serve`` on one home."""

    def __init__(self, tmp: Path, llm_base: str) -> None:
        self.home = tmp / "home"
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        config = tmp / "config.yml"
        config.write_text(
            yaml.safe_dump(
                {
                    "flows": {
                        "executor_id": EXECUTOR,
                        "concurrency": 4,
                        "per_user_concurrency": None,
                        "queue_poll_s": 0.05,
                    }
                }
            )
        )
        self.command = [*serve_command(self.port), "--config", str(config)]
        self.env = gateway_env(self.home, llm_base, NEXFLOW_GATEWAY_TOKEN=TOKEN)
        self.log = tmp / "gateway.log"
        self.proc: subprocess.Popen[bytes] | None = None

    def spawn(self) -> subprocess.Popen[bytes]:
        with self.log.open("ab") as out:
            return subprocess.Popen(
                self.command, env=self.env, stdout=out, stderr=subprocess.STDOUT
            )

    async def start(self) -> None:
        self.proc = self.spawn()
        await wait_healthy(self.url, self.proc)

    def client(self) -> httpx.AsyncClient:
        auth = {"Authorization": f"Bearer {TOKEN}"}
        return httpx.AsyncClient(base_url=self.url, headers=auth, timeout=30)

    def kill(self) -> None:
        assert self.proc is not None
        self.proc.send_signal(signal.SIGKILL)
        assert self.proc.wait(10) == -signal.SIGKILL
        self.proc = None

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)
        self.proc = None

    def pending(self) -> int:
        """Unfinished run workflows in the flows database (read while no one writes)."""
        db = self.home / "flows.sqlite3"
        if not db.exists():
            return 0
        rows = db_rows(
            db,
            "SELECT COUNT(*) FROM workflow_status WHERE name = 'nexflow.flows.run' "
            "AND status IN ('PENDING', 'ENQUEUED')",
        )
        return int(str(rows[0][0]))


async def start_runs(http: httpx.AsyncClient, tags: list[str]) -> list[str]:
    ids = []
    for tag in tags:
        resp = await http.post("/api/v1/flows/ledger/runs", json={"args": {"tag": tag}})
        assert resp.status_code == 201, resp.text
        ids.append(resp.json()["id"])
    return ids


async def settle(http: httpx.AsyncClient, ids: list[str], within: float) -> dict[str, Any]:
    deadline = time.monotonic() + within
    tasks: dict[str, Any] = {}
    while time.monotonic() < deadline:
        for run_id in ids:
            resp = await http.get(f"/api/v1/tasks/{run_id}")
            assert resp.status_code == 200, resp.text
            tasks[run_id] = resp.json()
        if all(t["status"] in ("completed", "failed", "cancelled") for t in tasks.values()):
            return tasks
        await asyncio.sleep(0.1)
    raise AssertionError({r: t["status"] for r, t in tasks.items()})


def daily_notes(home: Path) -> list[Path]:
    return sorted((home / "workspace" / "memory").glob("*/20*.md"))


def note_bytes(home: Path) -> int:
    return sum(p.stat().st_size for p in daily_notes(home))


async def effect_applied(home: Path, within: float) -> None:
    """Return as soon as a fact is appended to a note (the tool's effect is done; its
    result is not stored yet), or after ``within`` seconds."""
    before, deadline = note_bytes(home), time.monotonic() + within
    for _ in range(int(within / 0.001)):
        if note_bytes(home) != before or time.monotonic() > deadline:
            return
        await asyncio.sleep(0.001)


async def test_ten_sigkills_through_the_gateway_apply_each_effect_once(tmp_path: Path) -> None:
    rng = random.Random(int(os.environ.get("FLOWS_KILL_SEED", "2026")))
    llm = FakeLLMServer(brain=slow_echo)
    gw = Gateway(tmp_path, await llm.start())
    tags = [f"r{i}" for i in range(FIRST_RUNS + LATER_RUNS)]
    in_flight: list[int] = []
    try:
        await gw.start()
        async with gw.client() as http:
            resp = await http.post("/api/v1/flows", json={"name": "ledger", "yaml": FLOW})
            assert resp.status_code == 200, resp.text
            ids = await start_runs(http, tags[:FIRST_RUNS])
        for kill in range(KILLS):
            if kill % 2:  # right after a tool's effect, before its result is stored
                await effect_applied(gw.home, within=rng.uniform(2.0, 4.0))
            else:  # anywhere: the engine's launch, recovery, a wave, the wait
                await asyncio.sleep(rng.uniform(0.1, 1.5))
            gw.kill()
            in_flight.append(gw.pending())
            await gw.start()
            if kill == 2:
                async with gw.client() as http:
                    ids += await start_runs(http, tags[FIRST_RUNS:])
        async with gw.client() as http:
            tasks = await settle(http, ids, within=45)
            listed = (await http.get("/api/v1/tasks")).json()["tasks"]
    finally:
        gw.stop()
        await llm.stop()

    log = gw.log.read_text()
    assert log.count('"flows_resumed"') >= KILLS // 2  # restarts picked the runs up
    # the kills landed while runs were unfinished (else this test proves nothing)
    assert sum(1 for n in in_flight if n) >= KILLS // 2, in_flight

    # every run completed, over HTTP one by one and in the list alike
    assert {r: t["status"] for r, t in tasks.items()} == dict.fromkeys(ids, "completed")
    assert {t["id"]: t["status"] for t in listed} == dict.fromkeys(ids, "completed")
    for task in tasks.values():
        stages = {s["node"]: s for s in task["stages"]}
        assert all(s["status"] == "completed" for s in stages.values()), stages
        # one attempt per node: a replayed step reuses its key instead of trying again
        assert all(stages[n]["attempts"] == 1 for n in HOST_NODES), stages

    # each effect exactly once per run: nothing duplicated, nothing lost
    notes = "".join(p.read_text(encoding="utf-8") for p in daily_notes(gw.home))
    applied = Counter(BULLET.findall(notes))
    expected = Counter({(tag, node): 1 for tag in tags for node in EFFECT_NODES})
    assert applied == expected, applied - expected
    for run_id, tag in zip(ids, tags, strict=True):
        for node in EFFECT_NODES:  # saved with its step's key, attempt 1
            assert notes.count(f"<!-- key: {run_id}:{node}:1 -->") == 1, (run_id, node)
        assert f"fx-{tag}-last after echo note {tag} <!-- key:" in notes  # the agent's output
    indexed = db_rows(gw.home / "memory.db", "SELECT text FROM items WHERE text LIKE 'fx-%'")
    assert Counter(BULLET.findall("\n".join(f"- {t}" for (t,) in indexed))) == expected
    stored = db_rows(gw.home / "nexflow.db", "SELECT key FROM flow_tool_results")
    assert sorted(str(k) for (k,) in stored) == sorted(
        f"{run_id}:{node}:1" for run_id in ids for node in HOST_NODES
    )
    # some kills came after a fact was saved and before its result was stored: those
    # steps ran again and found their fact by its key
    assert '"memory_save_replayed"' in log
