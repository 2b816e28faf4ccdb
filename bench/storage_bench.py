"""SQLite vs Postgres under one gateway: per-message CPU, round trip and throughput.

Runs the gateway benchmark's HTTP load (``bench/gateway_bench.py``: a real ``nexflow
serve`` over HTTP against the scripted fake model) on the default SQLite storage and on
a Postgres 15 server this script starts (``nexflow.testing.postgres``, on loopback,
``fsync=off`` like the tests' server: commit latency is not what is compared), in
alternating rounds, and prints medians side by side::

    .venv/bin/python bench/storage_bench.py            # 2 rounds, a few minutes
    .venv/bin/python bench/storage_bench.py --quick    # 1 round, shorter levels

The gateway's CPU per message is its own process only; on Postgres the server's CPU
per message is printed next to it (read from /proc for the server's processes), since
on one machine both share the cores.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import sys
import tempfile
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

import gateway_bench as gb  # this folder's module

from nexflow.testing.postgres import Postgres, fresh_schema, start_postgres

PLAN = gb.Plan(warmup=20, rt_messages=200, levels=(16, 64), duration_s=8.0, rss_messages=300)
QUICK = gb.Plan(warmup=10, rt_messages=60, levels=(64,), duration_s=3.0, rss_messages=100)
TICKS = os.sysconf("SC_CLK_TCK")


def server_cpu_s(server: Postgres) -> float:
    """CPU seconds of every process of the Postgres server (postmaster and backends)."""
    assert server.data_dir is not None
    pid_file = server.data_dir / "postmaster.pid"
    root = int(pid_file.read_text().split()[0])
    total = 0.0
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            fields = (proc / "stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        pid, ppid = int(proc.name), int(fields[1])
        if root in (pid, ppid):
            total += (int(fields[11]) + int(fields[12])) / TICKS
    return total


async def one_run(
    children: gb.Children, llm_base: str, plan: gb.Plan, tag: str, server: Postgres | None
) -> dict[str, Any]:
    if server is None:
        os.environ.pop("BENCH_NEXFLOW_STORAGE__URL", None)
    else:
        os.environ["BENCH_NEXFLOW_STORAGE__URL"] = fresh_schema(server.url)

    async def start(name: str) -> gb.Gateway:
        return await gb.start_gateway(children, llm_base, f"{tag}-{name}")

    before = server_cpu_s(server) if server else 0.0
    result = await gb.bench_http(children, start, plan, False)
    if server is not None:
        sent = result["rss_after_n"]["messages"] + sum(level["n"] for level in result["levels"])
        result["server_cpu_ms_per_msg"] = round((server_cpu_s(server) - before) * 1000 / sent, 3)
    return result


def figures(r: dict[str, Any]) -> dict[str, float]:
    out = {
        "cpu_ms_per_msg": r["roundtrip"]["cpu_ms_per_msg"],
        "rt_p50_ms": r["roundtrip"]["rt_p50_ms"],
        "server_cpu_ms_per_msg": r.get("server_cpu_ms_per_msg", 0.0),
    }
    for level in r["levels"]:
        out[f"msg_s_at_{level['sessions']}"] = level["msg_per_s"]
    return out


async def run(args: argparse.Namespace) -> None:
    plan = QUICK if args.quick else PLAN
    rounds = 1 if args.quick else args.rounds
    workdir = Path(tempfile.mkdtemp(prefix="nexflow-storage-bench-"))
    children = gb.Children(workdir)
    server = start_postgres()
    if server is None:
        raise SystemExit("PostgreSQL server binaries are missing (apt-get install postgresql)")
    runs: dict[str, list[dict[str, float]]] = {"sqlite": [], "postgres": []}
    try:
        _, llm_base = await gb.start_fake_llm(children)
        for i in range(rounds):
            for engine in ("sqlite", "postgres") if i % 2 == 0 else ("postgres", "sqlite"):
                pg = server if engine == "postgres" else None
                result = await one_run(children, llm_base, plan, f"{engine}{i}", pg)
                runs[engine].append(figures(result))
                print(f"round {i + 1} {engine}: {runs[engine][-1]}", flush=True)
    finally:
        await children.close()
        server.stop()
    keys = list(runs["sqlite"][0])
    print(f"\nstorage bench: {rounds} round(s), medians; machine: {gb.machine()}")
    print(f"{'figure':26} {'SQLite':>10} {'Postgres':>10} {'PG/SQLite':>10}")
    for key in keys:
        lite = statistics.median(r[key] for r in runs["sqlite"])
        pg = statistics.median(r[key] for r in runs["postgres"])
        ratio = f"{pg / lite:.2f}" if lite else "-"
        print(f"{key:26} {lite:10.3f} {pg:10.3f} {ratio:>10}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--quick", action="store_true", help="one short round")
    parser.add_argument("--rounds", type=int, default=2, help="alternating rounds (default 2)")
    asyncio.run(run(parser.parse_args()))


if __name__ == "__main__":
    main()
