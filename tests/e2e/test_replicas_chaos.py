"""The deployment issue #14 describes, run for real: two ``nexflow serve`` replicas and one
``nexflow worker`` on one Postgres and one Redis, a Telegram bot on the fake Bot API, and
the model on the fake provider.

Four HTTP clients talk, each in its own session, alternating between the replicas'
ports. Five times, the replica that polls Telegram at that moment is SIGKILLed at a
random moment (so every kill is also a poller fail-over) and restarted; right after each
kill the owner writes to the bot, and a flow run (two skill steps, each with a side
effect in the shared workspace) is started at the surviving replica and runs on the
worker. At the end:

- every accepted HTTP message was answered exactly once, in order per session (storage:
  one reply row and one history entry each way per inbox row);
- every Telegram message was answered exactly once, across five poller fail-overs, with
  no storm of 409s;
- every flow run completed on the worker, each step's side effect applied once;
- a dead replica's sessions moved on to the live one (timed, printed).

A browser on one replica streaming a turn that runs on the other is
tests/browser/graphstudio/test_replica_stream.py (on LISTEN/NOTIFY and on Redis).
"""

from __future__ import annotations

import asyncio
import random
import signal
import statistics
import subprocess
import sys
import time
from collections import Counter
from contextlib import ExitStack
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import psycopg
import pytest
from deployment_support import AUTH, LEDGER_FLOW, TOKEN, fresh_database, wait_worker, worker_command
from deployment_support import Deployment as Processes

from nexflow.gateway.replicas import replica_owner
from nexflow.testing.channels import telegram_section
from nexflow.testing.fake_telegram import FakeTelegram
from nexflow.testing.harness import free_port
from nexflow.testing.postgres import Postgres
from nexflow.testing.process import gateway_env, process, serve_command, wait_healthy
from nexflow.testing.redis import RedisServer
from nexflow.testing.waiting import wait_until

pytestmark = [pytest.mark.slow, pytest.mark.timeout(360)]

CLIENTS = 4
KILLS = 5
MIN_MESSAGES = 8  # per client, after the last kill too
OWNER = 4242
ELECTED = b"telegram_poller_elected"


@dataclass
class Clients:
    """Four clients, each in its own session, alternating between the replicas' URLs."""

    urls: list[str]
    replies: dict[int, list[tuple[int, str]]] = field(default_factory=dict)
    sessions: dict[int, str] = field(default_factory=dict)
    done: asyncio.Event = field(default_factory=asyncio.Event)  # the kills are over

    async def run(self, http: httpx.AsyncClient, n: int) -> None:
        got = self.replies.setdefault(n, [])
        i = 0
        while not self.done.is_set() or i < MIN_MESSAGES:
            answer = await self.send(http, n, i)
            self.sessions.setdefault(n, answer["session"])
            assert answer["session"] == self.sessions[n]
            got.append((i, answer["reply"]))
            i += 1

    async def send(self, http: httpx.AsyncClient, n: int, i: int) -> dict[str, str]:
        body = {"message": f"c{n} msg {i}"}
        if n in self.sessions:
            body["session"] = self.sessions[n]
        for attempt in range(400):
            url = self.urls[(i + attempt) % 2]  # alternate; on failure, the other one
            try:
                resp = await http.post(
                    url + "/api/v1/chat",
                    json=body,
                    headers={"Idempotency-Key": f"c{n}-{i}", **AUTH},
                )
            except httpx.HTTPError:
                await asyncio.sleep(0.1)
                continue
            if resp.status_code == 200:
                return dict(resp.json())
            await asyncio.sleep(0.1)  # 202 (still running) or 503: ask again, same key
        raise AssertionError(f"client {n} message {i} was never answered")


class Deployment(Processes):
    """Two gateways and one worker: one config file; a home, port and log per process
    (a log per incarnation of a gateway)."""

    def __init__(self, tmp: Path, db: str, redis: str, llm: str, fake: FakeTelegram) -> None:
        super().__init__(tmp, db, llm)
        self.telegram = fake
        self.config_file = self.config(
            "config",
            redis={"url": redis},
            security={"owner": {"telegram": [str(OWNER)]}},
            outbox={"initial_backoff_s": 0.1, "max_backoff_s": 0.5},
            connectors={"telegram": telegram_section(fake, stream_edits=False)},
        )
        self.ports = [free_port(), free_port()]
        self.urls = [f"http://127.0.0.1:{p}" for p in self.ports]
        self.homes = [tmp / "home-0", tmp / "home-1"]
        self.starts = [0, 0]  # each incarnation logs to a file of its own
        self.gateways: list[subprocess.Popen[bytes] | None] = [None, None]

    def env(self, home: Path, executor: str, **extra: str) -> dict[str, str]:
        return gateway_env(
            home,
            self.llm_base,
            NEXFLOW_CONFIG=str(self.config_file),
            NEXFLOW_GATEWAY_TOKEN=TOKEN,
            NEXFLOW_FLOWS__EXECUTOR_ID=executor,
            **extra,
        )

    def log_of(self, i: int) -> Path:
        return self.tmp / f"gateway-{i}-{self.starts[i]}.log"

    async def start_gateway(self, stack: ExitStack, i: int) -> subprocess.Popen[bytes]:
        self.starts[i] += 1
        env = self.env(self.homes[i], f"gw-{i}", NEXFLOW_FLOWS__RUN_ON="workers")
        proc = stack.enter_context(process(serve_command(self.ports[i]), env, self.log_of(i)))
        self.gateways[i] = proc
        await wait_healthy(self.urls[i], proc)
        return proc

    async def start_worker(self, stack: ExitStack) -> None:
        health = free_port()
        env = self.env(self.tmp / "home-worker", "worker-1", NEXFLOW_FLOWS__SWEEP_S="0.5")
        proc = stack.enter_context(process(worker_command(health), env, self.tmp / "worker.log"))
        await wait_worker(health, proc)

    def poller(self) -> int | None:
        """The live replica whose current incarnation won the Telegram poller election."""
        for i, proc in enumerate(self.gateways):
            if proc is not None and proc.poll() is None and ELECTED in self.log_of(i).read_bytes():
                return i
        return None

    async def kill_the_poller(
        self, stack: ExitStack, http: httpx.AsyncClient, kill: int
    ) -> tuple[list[float], str]:
        """SIGKILL the replica that polls Telegram; while it is down the owner writes to
        the bot (the other replica must take over polling and answer) and a flow run is
        started at the survivor; restart it. Returns (seconds until the sessions it held
        moved on, if it held any; the flow run's id)."""
        victim = self.poller()
        assert victim is not None
        survivor = 1 - victim
        stranded = _held_by(self.db, replica_owner(self.homes[victim]))
        proc = self.gateways[victim]
        assert proc is not None
        proc.send_signal(signal.SIGKILL)
        killed_at = time.monotonic()
        proc.wait(10)
        text = f"while {victim} is down, {kill}"
        self.telegram.message(OWNER, text)
        run = await _start_run(http, self.urls[survivor], f"run{kill}")
        await wait_until(lambda: self.poller() == survivor, within=30)
        await wait_until(lambda: f"Echo: {text}" in self.replies(), within=30)
        moved = [await _moved_on(self.db, stranded, killed_at)] if stranded else []
        await self.start_gateway(stack, victim)  # after: it would take its sessions back
        return moved, run

    def replies(self) -> list[str]:
        return [s.text for s in self.telegram.sent if s.chat_id == OWNER]


def _ids(db: str, sql: str, args: tuple[object, ...]) -> list[int]:
    with psycopg.connect(db) as conn:
        return [int(r[0]) for r in conn.execute(sql, args).fetchall()]


def _held_by(db: str, owner: str) -> list[int]:
    """Turns left to run in the sessions ``owner`` holds."""
    return _ids(
        db,
        "SELECT i.id FROM inbox i JOIN scale_leases l ON l.key = 'session:' || i.session_id "
        "WHERE i.status IN ('pending','running') AND l.owner = %s",
        (owner,),
    )


async def _moved_on(db: str, stranded: list[int], killed_at: float) -> float:
    """Seconds from the kill until the live replica has answered what the dead one held."""
    sql = "SELECT id FROM inbox WHERE id = ANY(%s) AND status IN ('pending','running')"
    for _ in range(400):
        if not _ids(db, sql, (stranded,)):
            return time.monotonic() - killed_at
        await asyncio.sleep(0.05)
    raise AssertionError(f"{stranded} never moved on")


async def _start_run(http: httpx.AsyncClient, url: str, tag: str) -> str:
    resp = await http.post(
        url + "/api/v1/flows/ledger/runs", json={"args": {"tag": tag}}, headers=AUTH
    )
    assert resp.status_code == 201, resp.text
    return str(resp.json()["id"])


async def _settled(http: httpx.AsyncClient, url: str, run_id: str) -> str:
    for _ in range(600):
        resp = await http.get(f"{url}/api/v1/tasks/{run_id}", headers=AUTH)
        assert resp.status_code == 200, resp.text
        if (status := str(resp.json()["status"])) in ("completed", "failed", "cancelled"):
            return status
        await asyncio.sleep(0.1)
    raise AssertionError(f"flow run {run_id} never settled")


def _executors(db: str, run_ids: list[str]) -> set[str]:
    """Which DBOS executors ran the runs' node workflows."""
    with psycopg.connect(db) as conn:
        rows = conn.execute(
            "SELECT DISTINCT executor_id FROM dbos.workflow_status "
            "WHERE workflow_uuid LIKE ANY(%s)",
            ([f"{r}:%" for r in run_ids],),
        ).fetchall()
    return {str(r[0]) for r in rows}


async def test_two_gateways_and_a_worker_survive_five_poller_kills(
    tmp_path: Path, pg_server: Postgres, redis_server: RedisServer
) -> None:
    rng = random.Random(14)
    db = fresh_database(pg_server.url)
    llm_port = free_port()
    fake_llm = [sys.executable, "-m", "nexflow.testing.fake_llm", "--port", str(llm_port)]
    fake_llm += ["--latency-ms", "150"]
    recoveries: list[float] = []
    runs: list[str] = []
    started = time.monotonic()
    async with FakeTelegram() as telegram:
        dep = Deployment(
            tmp_path, db, redis_server.url, f"http://127.0.0.1:{llm_port}/v1", telegram
        )
        clients = Clients(dep.urls)
        with ExitStack() as stack:
            stack.enter_context(process(fake_llm, dep.env(tmp_path, "-"), tmp_path / "llm.log"))
            await dep.start_gateway(stack, 0)
            async with httpx.AsyncClient(timeout=90) as http:
                resp = await http.post(
                    dep.urls[0] + "/api/v1/flows",
                    json={"name": "ledger", "yaml": LEDGER_FLOW},
                    headers=AUTH,
                )
                assert resp.status_code == 200, resp.text
                await dep.start_gateway(stack, 1)
                await dep.start_worker(stack)
                await wait_until(lambda: dep.poller() is not None, within=45)
                tasks = [asyncio.create_task(clients.run(http, n)) for n in range(CLIENTS)]
                try:
                    for kill in range(KILLS):
                        await asyncio.sleep(rng.uniform(1.0, 3.0))
                        recovered, run = await dep.kill_the_poller(stack, http, kill)
                        recoveries += recovered
                        runs.append(run)
                    clients.done.set()
                    await asyncio.wait_for(asyncio.gather(*tasks), 90)
                finally:
                    for task in tasks:
                        task.cancel()
                statuses = [await _settled(http, dep.urls[0], run) for run in runs]
            for proc in dep.gateways:
                if proc is not None:
                    proc.send_signal(signal.SIGTERM)
                    proc.wait(20)
        elapsed = time.monotonic() - started

        total = _assert_answered_once(db, clients)
        said = Counter(dep.replies())
        for kill in range(KILLS):
            assert sum(n for text, n in said.items() if text.endswith(f"is down, {kill}")) == 1
        assert telegram.conflicts <= KILLS  # at most each dead poller's superseded poll
    assert statuses == ["completed"] * KILLS
    assert _executors(db, runs) == {"worker-1"}  # the gateways only enqueued them
    lines = Counter(line.split(" ", 1)[0] for line in dep.ledger())
    assert lines == {f"run{k}-{step}": 1 for k in range(KILLS) for step in ("first", "second")}
    assert sum(dep.starts) == KILLS + 2
    moved = (
        f"{statistics.median(recoveries):.2f} s median "
        f"({', '.join(f'{r:.2f}' for r in recoveries)})"
        if recoveries
        else "(no session was held at a kill)"
    )
    print(
        f"\ndeployment chaos: {total} messages, {KILLS} poller kills, {KILLS} flow runs on "
        f"the worker in {elapsed:.1f} s; a dead replica's sessions moved on in {moved}"
    )
    assert elapsed < 240


def _assert_answered_once(db: str, clients: Clients) -> int:
    """Every client got one right answer per message in its order; in storage each
    accepted message (HTTP or Telegram) is done with one reply row and one history entry
    each way, and each HTTP session's history is the client's messages in order.
    Returns how many messages."""
    for n, got in clients.replies.items():
        assert [i for i, _ in got] == list(range(len(got)))
        assert all(reply == f"Echo: c{n} msg {i}" for i, reply in got), got
        assert len(got) >= MIN_MESSAGES
    with psycopg.connect(db) as conn:
        per_inbox = conn.execute(
            "SELECT i.id, i.status, "
            "(SELECT COUNT(*) FROM outbox o WHERE o.inbox_id = i.id), "
            "(SELECT COUNT(*) FROM messages m WHERE m.inbox_id = i.id AND m.role = 'user'), "
            "(SELECT COUNT(*) FROM messages m WHERE m.inbox_id = i.id AND m.role = 'assistant') "
            "FROM inbox i"
        ).fetchall()
        failed = conn.execute("SELECT COUNT(*) FROM outbox WHERE status = 'failed'").fetchone()
        histories = {
            n: conn.execute(
                "SELECT role, content FROM messages WHERE session_id = %s ORDER BY id", (s,)
            ).fetchall()
            for n, s in clients.sessions.items()
        }
    assert per_inbox and all(row[1:] == ("done", 1, 1, 1) for row in per_inbox), per_inbox
    assert failed == (0,)
    for n, history in histories.items():
        sent = [c for r, c in history if r == "user"]
        assert sent == [f"c{n} msg {i}" for i in range(len(clients.replies[n]))], history
        assert [c for r, c in history if r == "assistant"] == [f"Echo: {m}" for m in sent]
    assert len(per_inbox) == sum(len(v) for v in clients.replies.values()) + KILLS
    return len(per_inbox)
