"""A chat turn's ``run_skill`` on a worker (``skills.run_on: workers``) vs in the gateway.

Usage: .venv/bin/python bench/skill_handoff_bench.py [--rounds 30] [--polls 0.2,0.05]

Starts a throwaway Postgres (the test helper), the scripted model in this process (it
calls ``run_skill`` on a trivial bash skill, then answers) and real processes:

- the baseline, a ``nexflow serve`` with ``skills.run_on: gateway`` (its own database),
  running through the whole run;
- per value of ``--polls`` (``flows.queue_poll_s``: how often a worker looks at the queue
  and the gateway for the result), a ``nexflow serve`` with ``skills.run_on: workers``
  and one ``nexflow worker`` on another database.

Turns alternate between the baseline and the hand-off gateway, one at a time, and the
script prints medians of: the ``run_skill`` call's wall time in the gateway (from its
``tool_call`` audit record: gate, hand-off and spawn), the skill process's own time (its
``skill_run`` audit record) and the chat round trip, plus the hand-off's extra time over
the baseline. Everything shares this machine's cores.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import statistics
import sys
import tempfile
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import httpx
import psycopg
import yaml

from nexflow.testing.fake_llm import FakeLLMServer, Reply
from nexflow.testing.harness import free_port
from nexflow.testing.postgres import start_postgres
from nexflow.testing.process import gateway_env, process, serve_command, wait_healthy

TOKEN = "bench-gateway-token-0123456789abcdef"
SKILL = "---\nname: noop\ndescription: Does nothing.\nlocation: ./run.sh\n---\n# noop\n"
SCRIPT = "#!/usr/bin/env bash\necho '{\"ok\": true}'\n"


def brain(request: dict[str, Any]) -> Reply:
    last = (request.get("messages") or [{}])[-1]
    if last.get("role") == "tool":
        return Reply(text="done")
    return Reply(tool_calls=(("run_skill", {"name": "noop", "input": {}}),))


def database(server: str) -> str:
    name = f"b_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(server, autocommit=True) as conn:
        conn.execute(f"CREATE DATABASE {name}")
    return server.rsplit("/", 1)[0] + "/" + name


def config(work: Path, name: str, db: str, run_on: str, poll: float) -> Path:
    path = work / f"{name}.yml"
    data = {
        "storage": {"url": db},
        "workspace": str(work / f"ws-{db.rsplit('/', 1)[1]}"),
        "skills": {"dirs": [str(work / "skills")], "watch": False, "run_on": run_on},
        "flows": {"run_on": "workers", "executor_id": name, "queue_poll_s": poll},
    }
    path.write_text(yaml.safe_dump(data))
    return path


@contextlib.contextmanager
def gateway(work: Path, name: str, cfg: Path, llm: str) -> Iterator[tuple[str, Any]]:
    port = free_port()
    env = gateway_env(work / f"home-{name}", llm, NEXFLOW_GATEWAY_TOKEN=TOKEN)
    with process([*serve_command(port), "--config", str(cfg)], env, work / f"{name}.log") as p:
        yield f"http://127.0.0.1:{port}", p


@contextlib.asynccontextmanager
async def handoff(work: Path, server: str, llm: str, poll: float) -> AsyncIterator[tuple[str, str]]:
    """A gateway with skills.run_on: workers and one worker; yields (url, database)."""
    db = database(server)
    tag = f"{poll:g}".replace(".", "_")
    with contextlib.ExitStack() as stack:
        url, gw = stack.enter_context(
            gateway(work, f"gw-{tag}", config(work, f"gw-{tag}", db, "workers", poll), llm)
        )
        health = free_port()
        argv = [sys.executable, "-m", "nexflow", "worker", "--health-port", str(health)]
        argv += ["--config", str(config(work, f"wk-{tag}", db, "workers", poll))]
        env = gateway_env(work / f"home-wk-{tag}", llm)
        wk = stack.enter_context(process(argv, env, work / f"wk-{tag}.log"))
        await wait_healthy(url, gw)
        await wait_healthy(f"http://127.0.0.1:{health}", wk)
        yield url, db


async def turn(http: httpx.AsyncClient, url: str) -> float:
    started = time.perf_counter()
    resp = await http.post(f"{url}/api/v1/chat", json={"message": "go"})
    resp.raise_for_status()
    assert resp.json()["reply"] == "done", resp.text
    return time.perf_counter() - started


def audited(db: str) -> tuple[list[float], list[float]]:
    """(run_skill wall times, skill process times) in ms, oldest first."""
    with psycopg.connect(db) as conn:
        rows = conn.execute(
            "SELECT kind, data FROM audit WHERE (kind = 'tool_call' AND name = 'run_skill') "
            "OR kind = 'skill_run' ORDER BY id"
        ).fetchall()
    tool: list[float] = []
    skill: list[float] = []
    for kind, data in rows:
        values = json.loads(data) if isinstance(data, str) else data
        if kind == "tool_call":
            tool.append(float(values["duration_s"]) * 1000)
        else:
            skill.append(float(values["duration_ms"]))
    return tool, skill


def median(values: list[float]) -> float:
    return statistics.median(values) if values else float("nan")


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rounds", type=int, default=30)
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument("--polls", default="0.2,0.05")
    args = parser.parse_args()
    polls = [float(p) for p in args.polls.split(",")]
    pg = start_postgres()
    if pg is None:
        sys.exit("the Postgres server binaries are not installed")
    llm = FakeLLMServer(brain=brain)
    base = await llm.start()
    try:
        with tempfile.TemporaryDirectory(prefix="nexflow-handoff-") as tmp:
            work = Path(tmp)
            skill = work / "skills" / "noop"
            skill.mkdir(parents=True)
            (skill / "SKILL.md").write_text(SKILL)
            (skill / "run.sh").write_text(SCRIPT)
            local_db = database(pg.url)
            cfg = config(work, "local", local_db, "gateway", 0.2)
            auth = {"Authorization": f"Bearer {TOKEN}"}
            with gateway(work, "local", cfg, base) as (local, proc):
                await wait_healthy(local, proc)
                async with httpx.AsyncClient(headers=auth, timeout=60) as http:
                    for poll in polls:
                        async with handoff(work, pg.url, base, poll) as (remote, db):
                            await report(http, local, local_db, remote, db, poll, args)
    finally:
        await llm.stop()
        pg.stop()


async def report(
    http: httpx.AsyncClient,
    local: str,
    local_db: str,
    remote: str,
    remote_db: str,
    poll: float,
    args: argparse.Namespace,
) -> None:
    trips: dict[str, list[float]] = {"gateway": [], "worker": []}
    before = {
        name: len(audited(db)[0]) for name, db in (("gateway", local_db), ("worker", remote_db))
    }
    for n in range(args.warmup + args.rounds):
        for name, url in (("gateway", local), ("worker", remote)):
            took = await turn(http, url)
            if n >= args.warmup:
                trips[name].append(took * 1000)
    print(f"\nflows.queue_poll_s = {poll:g}, {args.rounds} turns each (medians, ms)")
    print(f"{'':10} {'run_skill':>10} {'skill':>8} {'round trip':>11}")
    rows: dict[str, tuple[float, float, float]] = {}
    for name, db in (("gateway", local_db), ("worker", remote_db)):
        tool, skill = audited(db)
        skip = before[name] + args.warmup
        rows[name] = (median(tool[skip:]), median(skill[skip:]), median(trips[name]))
        print(f"{name:10} {rows[name][0]:10.1f} {rows[name][1]:8.1f} {rows[name][2]:11.1f}")
    extra = rows["worker"][0] - rows["gateway"][0]
    print(f"hand-off overhead (run_skill, worker - gateway): {extra:.1f} ms")


if __name__ == "__main__":
    asyncio.run(main())
