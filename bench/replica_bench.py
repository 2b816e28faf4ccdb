"""Replicas on one Postgres (nexflow/gateway/replicas.py, docs/scale-out.md "Replicas").

Usage: .venv/bin/python bench/replica_bench.py [--seconds 10] [--sessions 64] [--kills 3]

Starts a throwaway Postgres (the test helper), the scripted model (no latency: what is
measured is the gateway) and real ``nexflow serve`` processes, then prints, all measured
in this one run:

- per-message latency (median, p95; with a zero-latency model that is the gateway's own
  overhead) and throughput with ``--sessions`` clients, each in its own session sending
  one message after the other over ``POST /api/v1/chat``, for: one replica on SQLite (for
  scale), one replica on Postgres, two replicas on one Postgres (each client alternating
  between them, as a load balancer without affinity would);
- the time for a dead replica's sessions to move on: 16 clients on two replicas, one is
  SIGKILLed, seconds until every turn of the sessions it held is answered by the other
  (median of ``--kills``; the dead one is restarted between kills; here the model takes
  200 ms, so turns are in flight when the kill lands).

Everything shares this machine's cores (2 here): the clients, both gateways and Postgres.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import random
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import aiohttp
import psycopg

from nexflow.gateway.replicas import replica_owner
from nexflow.testing.harness import free_port
from nexflow.testing.postgres import fresh_schema, start_postgres
from nexflow.testing.process import gateway_env, process, serve_command, wait_healthy


@contextlib.contextmanager
def fake_model(workdir: Path, latency_ms: int = 0) -> Iterator[str]:
    port = free_port()
    argv = [sys.executable, "-m", "nexflow.testing.fake_llm", "--port", str(port)]
    argv += ["--latency-ms", str(latency_ms)]
    with process(argv, dict(os.environ), workdir / f"fake-{latency_ms}.log"):
        yield f"http://127.0.0.1:{port}/v1"


@contextlib.asynccontextmanager
async def replicas(
    workdir: Path, llm: str, storage_url: str | None, count: int, tag: str
) -> AsyncIterator[list[tuple[str, subprocess.Popen[bytes], Path]]]:
    """``count`` gateways on one database; yields (url, process, home) each."""
    with contextlib.ExitStack() as stack:
        started: list[tuple[str, subprocess.Popen[bytes], Path]] = []
        for n in range(count):
            home, port = workdir / f"{tag}-{n}", free_port()
            extra = {"NEXFLOW_STORAGE__URL": storage_url} if storage_url else {}
            env = gateway_env(home, llm, **extra)
            proc = stack.enter_context(
                process(serve_command(port), env, workdir / f"{tag}-{n}.log")
            )
            started.append((f"http://127.0.0.1:{port}", proc, home))
        for url, proc, _ in started:
            await wait_healthy(url, proc)
        yield started
        for _, proc, _ in started:
            proc.send_signal(signal.SIGTERM)
        for _, proc, _ in started:
            proc.wait(20)


async def chat(http: aiohttp.ClientSession, url: str, session: str | None, text: str) -> str:
    body = {"message": text, **({"session": session} if session else {})}
    async with http.post(url + "/api/v1/chat", json=body) as resp:
        answer = await resp.json()
        if resp.status != 200 or answer.get("reply") != f"Echo: {text}":
            raise RuntimeError(f"{resp.status}: {answer}")
        return str(answer["session"])


async def load(urls: list[str], sessions: int, seconds: float) -> dict[str, float]:
    """Each client in its own session, one message after the other, alternating URLs."""
    connector = aiohttp.TCPConnector(limit=0)
    async with aiohttp.ClientSession(connector=connector) as http:
        ids = await asyncio.gather(
            *(chat(http, urls[k % len(urls)], None, f"hello {k}") for k in range(sessions))
        )
        for k, sid in enumerate(ids):  # warm up: every session once on every replica
            for url in urls:
                await chat(http, url, sid, f"warm {k}")
        samples: list[float] = []
        stop_at = time.monotonic() + seconds

        async def client(k: int) -> None:
            i = 0
            while time.monotonic() < stop_at:
                started = time.perf_counter()
                await chat(http, urls[(k + i) % len(urls)], ids[k], f"s{k} m{i}")
                samples.append(time.perf_counter() - started)
                i += 1

        began = time.monotonic()
        await asyncio.gather(*(client(k) for k in range(sessions)))
        took = time.monotonic() - began
    ordered = sorted(samples)
    return {
        "messages": len(samples),
        "per_s": len(samples) / took,
        "median_ms": statistics.median(ordered) * 1000,
        "p95_ms": ordered[int(len(ordered) * 0.95)] * 1000,
    }


def _ids(url: str, sql: str, args: tuple[object, ...]) -> list[int]:
    with psycopg.connect(url) as conn:
        return [int(r[0]) for r in conn.execute(sql, args).fetchall()]


async def _moved_on(pg_url: str, owner: str, kill: subprocess.Popen[bytes]) -> float | None:
    """SIGKILL ``kill``; seconds until the turns of the sessions it held are answered."""
    held = _ids(
        pg_url,
        "SELECT i.id FROM inbox i JOIN scale_leases l ON l.key = 'session:' || i.session_id "
        "WHERE i.status IN ('pending','running') AND l.owner = %s",
        (owner,),
    )
    kill.send_signal(signal.SIGKILL)
    killed = time.monotonic()
    kill.wait(10)
    if not held:
        return None
    for _ in range(3000):
        open_turns = _ids(
            pg_url,
            "SELECT id FROM inbox WHERE id = ANY(%s) AND status IN ('pending','running')",
            (held,),
        )
        if not open_turns:
            return time.monotonic() - killed
        await asyncio.sleep(0.02)
    raise RuntimeError(f"{held} never moved on")


async def recovery(workdir: Path, llm: str, pg_url: str, kills: int) -> list[float]:
    """Seconds from a replica's SIGKILL until the turns of the sessions it held are
    answered by the other one (16 clients alternating between the two)."""
    rng = random.Random(14)
    times: list[float] = []
    home, port = workdir / "victim", free_port()
    env = gateway_env(home, llm, NEXFLOW_STORAGE__URL=pg_url)
    victim_url = f"http://127.0.0.1:{port}"
    async with replicas(workdir, llm, pg_url, 1, "live") as live:
        urls = [live[0][0], victim_url]
        stop = asyncio.Event()

        async def client(http: aiohttp.ClientSession, k: int) -> None:
            session, i = None, 0
            while not stop.is_set():
                for attempt in range(200):
                    try:
                        session = await chat(http, urls[(i + attempt) % 2], session, f"{k}.{i}")
                        break
                    except (aiohttp.ClientError, RuntimeError):
                        await asyncio.sleep(0.05)
                i += 1

        async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=60)) as http:
            clients: list[asyncio.Task[None]] = []
            try:
                for _ in range(kills):
                    with process(serve_command(port), env, workdir / "victim.log") as victim:
                        await wait_healthy(victim_url, victim)
                        clients = clients or [
                            asyncio.create_task(client(http, k)) for k in range(16)
                        ]
                        await asyncio.sleep(rng.uniform(1.5, 3.0))
                        took = await _moved_on(pg_url, replica_owner(home), victim)
                    if took is not None:
                        times.append(took)
            finally:
                stop.set()
                await asyncio.gather(*clients, return_exceptions=True)
    return times


async def main(seconds: float, sessions: int, kills: int) -> None:
    pg = start_postgres()
    if pg is None:
        raise SystemExit("needs the postgresql Debian package")
    try:
        with tempfile.TemporaryDirectory() as tmp, fake_model(Path(tmp)) as llm:
            workdir = Path(tmp)
            print(f"{sessions} sessions, {seconds:.0f} s each, zero-latency model, 2 cores\n")
            print(f"{'setup':34} {'msgs/s':>8} {'median ms':>10} {'p95 ms':>8} {'msgs':>7}")
            setups = [
                ("one replica, SQLite", None, 1),
                ("one replica, Postgres", fresh_schema(pg.url), 1),
                ("two replicas, one Postgres", fresh_schema(pg.url), 2),
            ]
            for n, (name, url, count) in enumerate(setups):
                async with replicas(workdir, llm, url, count, f"setup{n}") as gws:
                    r = await load([u for u, _, _ in gws], sessions, seconds)
                print(
                    f"  {name:32} {r['per_s']:8.1f} {r['median_ms']:10.1f} {r['p95_ms']:8.1f} "
                    f"{r['messages']:7.0f}"
                )
            with fake_model(workdir, 200) as slow:  # turns in flight when the kill lands
                times = await recovery(workdir, slow, fresh_schema(pg.url), kills)
            shown = ", ".join(f"{t:.2f}" for t in times)
            median = f"{statistics.median(times):.2f} s" if times else "n/a"
            print(f"\ndead replica's sessions moved on: median {median} ({shown})")
    finally:
        pg.stop()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--sessions", type=int, default=64)
    parser.add_argument("--kills", type=int, default=5)
    args = parser.parse_args()
    asyncio.run(main(args.seconds, args.sessions, args.kills))
