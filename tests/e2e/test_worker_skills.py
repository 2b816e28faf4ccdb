"""``skills.run_on: workers``: a chat turn's ``run_skill`` spawns on a ``nexflow worker``.

One gateway and two workers on a real Postgres (a database of its own per test), the fake
model scripting the ``run_skill`` call, and a real bash skill (``ledger-bash``): it
appends ``<tag> <key>`` to ``ledger.txt`` in the shared workspace unless a line with its
``NEXFLOW_IDEMPOTENCY_KEY`` is there already, sleeps ``sleep`` seconds (the window in
which a test looks at it or SIGKILLs its worker), then prints its tag and key as JSON.
Gateway and workers share the workspace, as a deployment shares one volume.
"""

from __future__ import annotations

import asyncio
import signal
import subprocess
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import psycopg
import pytest
from deployment_support import AUTH, TOKEN, fresh_database
from deployment_support import Deployment as Processes

from nexflow.skills.remote import run_id_for
from nexflow.testing.fake_llm import FakeLLMServer, Reply
from nexflow.testing.harness import free_port
from nexflow.testing.postgres import Postgres
from nexflow.testing.process import serve_command, wait_healthy
from nexflow.tools.base import ToolContext

pytestmark = pytest.mark.slow

SKILL = """\
---
name: ledger-bash
description: Append a tag to ledger.txt once per idempotency key.
location: ./run.sh
---
# ledger-bash
"""
SCRIPT = """\
#!/usr/bin/env bash
set -eu
key="${NEXFLOW_IDEMPOTENCY_KEY:-}"
ledger="$NEXFLOW_WORKSPACE/ledger.txt"
if [ -z "$key" ] || ! grep -qs " $key\\$" "$ledger"; then
  echo "$SKILL_ARG_TAG $key" >> "$ledger"
fi
sleep "${SKILL_ARG_SLEEP:-0}"
printf '{"tag": "%s", "key": "%s"}\\n' "$SKILL_ARG_TAG" "$key"
"""


class Deployment(Processes):
    """One gateway, two workers, one Postgres database, one shared workspace."""

    def __init__(self, tmp: Path, db: str, llm: FakeLLMServer, base: str) -> None:
        super().__init__(tmp, db, base)
        self.llm = llm
        self.skill_dir = self.add_skill(
            "ledger-bash", {"SKILL.md": SKILL, "run.sh": SCRIPT}, executable="run.sh"
        )
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.gateway: subprocess.Popen[bytes] | None = None
        self.workers: dict[str, subprocess.Popen[bytes]] = {}

    def skill_config(
        self, name: str, executor: str, run_on: str, poll_s: float | None = None, **more: Any
    ) -> Path:
        flows: dict[str, Any] = {"run_on": "workers", "executor_id": executor, "sweep_s": 0.5}
        if poll_s is not None:
            flows["queue_poll_s"] = poll_s
        return self.config(name, skills={"run_on": run_on}, flows=flows, **more)

    async def start_gateway(
        self, run_on: str, poll_s: float | None = None, reply_timeout_s: float | None = None
    ) -> None:
        """``poll_s``: the gateway's ``flows.queue_poll_s`` (the workers keep 0.05 s);
        ``reply_timeout_s``: how long ``POST /api/v1/chat`` waits before its 202."""
        web = {} if reply_timeout_s is None else {"web": {"reply_timeout_s": reply_timeout_s}}
        config = self.skill_config("gateway", "gw-1", run_on, poll_s, **web)
        command = [*serve_command(self.port), "--config", str(config)]
        self.gateway = self.spawn("gateway", command, NEXFLOW_GATEWAY_TOKEN=TOKEN)
        await wait_healthy(self.url, self.gateway)

    async def start_worker(self, executor: str) -> None:
        config = self.skill_config(f"worker-{executor}", executor, "workers")
        self.workers[executor] = await self.spawn_worker(f"worker-{executor}", config)

    def client(self) -> httpx.AsyncClient:
        return httpx.AsyncClient(base_url=self.url, headers=AUTH, timeout=90)

    async def chat(self, tag: str, sleep: float = 0) -> dict[str, Any]:
        """One turn whose model calls ``ledger-bash``; the reply."""
        args = {"name": "ledger-bash", "input": {"tag": tag, "sleep": sleep}}
        self.llm.push(Reply(tool_calls=(("run_skill", args),)))
        async with self.client() as http:
            resp = await http.post("/api/v1/chat", json={"message": f"run the ledger {tag}"})
        assert resp.status_code == 200, resp.text
        data: dict[str, Any] = resp.json()
        return data

    def skill_runs(self) -> list[tuple[str, str, str]]:
        """(workflow id, status, executor) of every handed-off skill run."""
        with psycopg.connect(self.db) as conn:
            rows = conn.execute(
                "SELECT workflow_uuid, status, executor_id FROM dbos.workflow_status "
                "WHERE name = 'nexflow.skills.run' ORDER BY created_at"
            ).fetchall()
        return [(str(w), str(s), str(e)) for w, s, e in rows]

    async def replayed(self, tag: str, run_id: str) -> None:
        """After a gateway restart: its replay of the session's turn answers with the
        run's result, and the skill ran once (the replay joined the run)."""
        async with self.client() as http:
            [session] = (await http.get("/api/v1/sessions")).json()
            deadline = time.monotonic() + 60
            while True:
                detail = (await http.get(f"/api/v1/sessions/{session['id']}")).json()
                if detail["messages"] and detail["messages"][-1]["role"] == "assistant":
                    break
                assert time.monotonic() < deadline, detail
                await asyncio.sleep(0.1)
        assert f'"tag": "{tag}"' in detail["messages"][-1]["content"], detail["messages"]
        assert [(w, s) for w, s, _ in self.skill_runs()] == [(run_id, "SUCCESS")]
        assert self.ledger() == [f"{tag} {run_id}"]
        logs = (self.tmp / f"worker-{w}.log" for w in self.workers)
        runs = sum(log.read_text(errors="replace").count('"skill_ran_on_worker"') for log in logs)
        assert runs == 1  # joined, not run again

    def skill_ancestry(self) -> list[int] | None:
        """The host pids above the running skill's shell (its parent, theirs, …), or None
        while no skill process runs. Read from /proc, outside any sandbox."""
        script = str(self.skill_dir / "run.sh").encode()
        for entry in Path("/proc").iterdir():
            if not entry.name.isdigit():
                continue
            try:
                argv = (entry / "cmdline").read_bytes().split(b"\0")
            except OSError:
                continue
            if script in argv and not any(b"bwrap" in a for a in argv[:1]):
                return _parents(int(entry.name))
        return None


def _parents(pid: int) -> list[int]:
    chain: list[int] = []
    while pid > 1:
        try:
            status = Path(f"/proc/{pid}/status").read_text()
        except OSError:
            break
        pid = int(next(line.split()[1] for line in status.splitlines() if line.startswith("PPid:")))
        chain.append(pid)
    return chain


async def deploy(
    tmp_path: Path, pg_server: Postgres, run_on: str, gateway_poll_s: float | None = None
) -> AsyncIterator[Deployment]:
    llm = FakeLLMServer()
    dep = Deployment(tmp_path, fresh_database(pg_server.url), llm, await llm.start())
    try:
        await dep.start_gateway(run_on, gateway_poll_s)
        await asyncio.gather(dep.start_worker("worker-a"), dep.start_worker("worker-b"))
        yield dep
    finally:
        dep.stop()
        await llm.stop()


@pytest.fixture
async def deployment(tmp_path: Path, pg_server: Postgres) -> AsyncIterator[Deployment]:
    async for dep in deploy(tmp_path, pg_server, "workers"):
        yield dep


def tool_message(dep: Deployment) -> str:
    messages = dep.llm.requests[-1]["messages"]
    return str(next(m for m in reversed(messages) if m["role"] == "tool")["content"])


async def test_a_chat_turns_skill_runs_on_a_worker(deployment: Deployment) -> None:
    dep = deployment
    turn = asyncio.create_task(dep.chat("alpha", sleep=1.5))
    ancestry: list[int] | None = None
    deadline = time.monotonic() + 30
    while ancestry is None and not turn.done():
        assert time.monotonic() < deadline
        ancestry = await asyncio.to_thread(dep.skill_ancestry)
        await asyncio.sleep(0.02)
    reply = await turn
    assert reply["status"] == "done", reply
    assert '"tag": "alpha"' in tool_message(dep) and "alpha" in reply["reply"], reply
    # the skill process descends from a worker, not from the gateway
    assert dep.gateway is not None and ancestry is not None
    workers = {proc.pid for proc in dep.workers.values()}
    assert dep.gateway.pid not in ancestry, ancestry
    assert workers & set(ancestry), (ancestry, workers)
    # one durable run, on a worker, under the id derived from the turn and the call
    ctx = ToolContext("", str(reply["session"]), "web", "", turn_id=str(reply["message_id"]))
    expected = run_id_for("ledger-bash", {"tag": "alpha", "sleep": 1.5}, ctx)
    [(run_id, status, executor)] = dep.skill_runs()
    assert (run_id, status) == (expected, "SUCCESS")
    assert executor in dep.workers
    [line] = dep.ledger()
    assert line == f"alpha {expected}"  # NEXFLOW_IDEMPOTENCY_KEY: the run's id


async def test_the_gateway_stays_responsive_while_a_skill_runs(deployment: Deployment) -> None:
    dep = deployment
    turn = asyncio.create_task(dep.chat("slow", sleep=3))
    await dep.appended("slow")  # the skill runs (and sleeps) on a worker
    waits: list[float] = []
    async with httpx.AsyncClient(base_url=dep.url, timeout=10) as http:
        for _ in range(10):
            started = time.perf_counter()
            assert (await http.get("/health")).status_code == 200
            waits.append(time.perf_counter() - started)
            await asyncio.sleep(0.05)
    assert not turn.done()  # all answered while the skill was still running
    assert max(waits) < 0.5, waits
    reply = await turn
    assert reply["status"] == "done" and '"tag": "slow"' in tool_message(dep), reply


async def test_a_worker_killed_mid_skill_is_recovered_by_another(
    deployment: Deployment,
) -> None:
    dep = deployment
    turn = asyncio.create_task(dep.chat("kill", sleep=4))
    await dep.appended("kill")  # the side effect is done; the skill still sleeps
    [(run_id, status, executor)] = dep.skill_runs()
    assert status == "PENDING"
    victim = dep.workers[executor]
    victim.send_signal(signal.SIGKILL)
    assert victim.wait(10) == -signal.SIGKILL
    reply = await asyncio.wait_for(turn, 90)
    assert reply["status"] == "done", reply
    assert '"tag": "kill"' in tool_message(dep), tool_message(dep)
    [(same_id, status, survivor)] = dep.skill_runs()
    assert (same_id, status) == (run_id, "SUCCESS")
    assert survivor != executor and survivor in dep.workers  # swept, not the gateway
    assert dep.ledger() == [f"kill {run_id}"]  # ran twice, applied once
    other = "worker-b" if executor == "worker-a" else "worker-a"
    log = (dep.tmp / f"worker-{other}.log").read_text(errors="replace")
    assert '"flows_swept"' in log and '"skill_ran_on_worker"' in log


async def test_a_turn_replayed_after_a_gateway_crash_joins_the_same_run(
    deployment: Deployment,
) -> None:
    dep = deployment
    assert dep.gateway is not None
    turn = asyncio.create_task(dep.chat("replay", sleep=3))
    await dep.appended("replay")  # handed off, running on a worker
    dep.gateway.send_signal(signal.SIGKILL)
    assert dep.gateway.wait(10) == -signal.SIGKILL
    with pytest.raises(httpx.HTTPError):
        await turn
    [(run_id, _, _)] = dep.skill_runs()
    # the restarted gateway replays the turn; the model makes the same call again
    args = {"name": "ledger-bash", "input": {"tag": "replay", "sleep": 3}}
    dep.llm.push(Reply(tool_calls=(("run_skill", args),)))
    await dep.start_gateway("workers")
    await dep.replayed("replay", run_id)


async def test_the_result_wakes_the_gateway_before_its_next_poll(
    tmp_path: Path, pg_server: Postgres
) -> None:
    """The worker sets the result as a workflow event, which reaches the gateway by
    LISTEN/NOTIFY: a gateway that looks at the run only every 30 s (ten times that for
    its status) still answers as soon as the skill is done."""
    async for dep in deploy(tmp_path, pg_server, "workers", gateway_poll_s=30):
        started = time.monotonic()
        reply = await asyncio.wait_for(dep.chat("wake"), 60)
        took = time.monotonic() - started
        assert reply["status"] == "done" and '"tag": "wake"' in tool_message(dep), reply
        assert took < 10, f"the turn took {took:.1f} s: the gateway waited for a poll"
        [(run_id, status, _)] = dep.skill_runs()
        assert status == "SUCCESS"
        with psycopg.connect(dep.db) as conn:
            row = conn.execute(
                "SELECT 1 FROM dbos.workflow_events WHERE workflow_uuid = %s AND key = %s",
                (run_id, "nexflow.skills.result"),
            ).fetchone()
        assert row is not None  # the event that woke it


async def test_stopping_the_turn_kills_its_skill_on_the_worker(deployment: Deployment) -> None:
    """The chat's Stop for a turn whose skill runs on a worker: the turn ends as stopped,
    the run is cancelled, and the worker kills the skill's process within its watch
    interval (0.5 s) instead of letting it sleep its 30 s out."""
    dep = deployment
    turn = asyncio.create_task(dep.chat("halt", sleep=30))
    await dep.appended("halt")  # running (sleeping) on a worker
    assert await asyncio.to_thread(dep.skill_ancestry) is not None
    async with dep.client() as http:
        [session] = (await http.get("/api/v1/sessions")).json()
        stop = await http.post(f"/api/v1/sessions/{session['id']}/stop")
    assert stop.status_code == 200 and stop.json()["stopped"] is True, stop.text
    stopped_at = time.monotonic()
    reply = await asyncio.wait_for(turn, 30)
    assert reply["error"] == "stopped", reply

    while await asyncio.to_thread(dep.skill_ancestry) is not None:
        assert time.monotonic() - stopped_at < 10, "the skill still runs on the worker"
        await asyncio.sleep(0.05)
    [(_, status, executor)] = dep.skill_runs()
    assert status == "CANCELLED"
    log = (dep.tmp / f"worker-{executor}.log").read_text(errors="replace")
    assert '"skill_cancelled_on_worker"' in log


async def test_a_gateway_shut_down_mid_skill_leaves_the_run_to_the_replayed_turn(
    deployment: Deployment,
) -> None:
    """A graceful stop (SIGTERM) cancels the running turn too, but not as the user's
    Stop: the run goes on on the worker, and the restarted gateway's replay of the turn
    joins it (one spawn), as after a SIGKILL."""
    dep = deployment
    assert dep.gateway is not None
    dep.gateway.send_signal(signal.SIGTERM)  # again with a 1 s reply timeout: no waiter
    dep.gateway.wait(30)
    await dep.start_gateway("workers", reply_timeout_s=1)
    args = {"name": "ledger-bash", "input": {"tag": "term", "sleep": 12}}
    dep.llm.push(Reply(tool_calls=(("run_skill", args),)))
    async with dep.client() as http:
        sent = await http.post("/api/v1/chat", json={"message": "run the ledger term"})
    assert sent.status_code == 202, sent.text  # the turn runs on; nobody waits for it
    await dep.appended("term")  # running (sleeping) on a worker
    [(run_id, _, _)] = dep.skill_runs()
    dep.gateway.send_signal(signal.SIGTERM)  # the bus drains 5 s, then cancels the turn
    dep.gateway.wait(30)
    assert [(w, s) for w, s, _ in dep.skill_runs()] == [(run_id, "PENDING")]  # not cancelled
    dep.llm.push(Reply(tool_calls=(("run_skill", args),)))  # the replay makes the same call
    await dep.start_gateway("workers", reply_timeout_s=1)
    await dep.replayed("term", run_id)


def test_workers_need_postgres_and_flows_on_workers(tmp_path: Path) -> None:
    from pydantic import ValidationError

    from nexflow.config.model import NexflowConfig

    with pytest.raises(ValidationError, match="needs storage on Postgres"):
        NexflowConfig(home=tmp_path, skills={"run_on": "workers"})  # type: ignore[arg-type]
    url = "postgresql://u@127.0.0.1/db"
    with pytest.raises(ValidationError, match=r"flows\.run_on: workers"):
        NexflowConfig(
            home=tmp_path,
            storage={"url": url},  # type: ignore[arg-type]
            skills={"run_on": "workers"},  # type: ignore[arg-type]
        )
    ok = NexflowConfig(
        home=tmp_path,
        storage={"url": url},  # type: ignore[arg-type]
        skills={"run_on": "workers"},  # type: ignore[arg-type]
        flows={"run_on": "workers"},  # type: ignore[arg-type]
    )
    assert ok.skills.run_on == "workers"
