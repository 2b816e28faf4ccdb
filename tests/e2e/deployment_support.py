"""What the multi-process deployment tests share: a database of their own on the test
run's Postgres, gateways and ``nexflow worker`` processes spawned with a home and a log
each, the skills and workspaces in folders every process shares (as a deployment shares
one volume), and the ledger skill whose side effect a test counts.

The ledger skill (``ledger-append``) appends ``<tag> <key>`` to ``ledger.txt`` in the
caller's workspace unless a line with its ``NEXFLOW_IDEMPOTENCY_KEY`` is there already,
then sleeps ``sleep`` seconds (the window in which a test SIGKILLs the process running it:
the effect is done, the result is not stored yet).
"""

from __future__ import annotations

import asyncio
import contextlib
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path
from typing import Any

import httpx
import psycopg
import yaml

from nexflow.testing.harness import free_port
from nexflow.testing.process import gateway_env

TOKEN = "owner-gateway-token-0123456789abcdef"
AUTH = {"Authorization": f"Bearer {TOKEN}"}
LEDGER_SKILL = """\
---
name: ledger-append
description: Append a tag to ledger.txt once per idempotency key.
location: ./run.py
---
# ledger-append
"""
LEDGER_SCRIPT = """\
import json, os, sys, time

data = json.loads(os.environ.get("SKILL_INPUT") or sys.stdin.read() or "{}")
key = os.environ.get("NEXFLOW_IDEMPOTENCY_KEY", "")
path = os.path.join(os.environ["NEXFLOW_WORKSPACE"], "ledger.txt")
seen = open(path).read().splitlines() if os.path.exists(path) else []
if not key or not any(line.endswith(" " + key) for line in seen):
    with open(path, "a") as out:
        out.write(data["tag"] + " " + key + "\\n")
time.sleep(float(data.get("sleep") or 0))
print(json.dumps({"tag": data["tag"], "key": key, "pid": os.getpid()}))
"""
LEDGER_FLOW = """\
name: ledger
inputs:
  tag: {type: string, required: true}
  sleep: {type: number, default: 0}
nodes:
  first:
    type: tool
    tool: run_skill
    args: {name: ledger-append, input: {tag: "${inputs.tag}-first"}}
  second:
    type: tool
    tool: run_skill
    needs: [first]
    args: {name: ledger-append, input: {tag: "${inputs.tag}-second", sleep: "${inputs.sleep}"}}
"""


def fresh_database(server_url: str) -> str:
    """An empty database of its own on the test server (DBOS's ``dbos`` schema included,
    which a schema per test could not keep apart)."""
    name = f"d_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(server_url, autocommit=True) as conn:
        conn.execute(f"CREATE DATABASE {name}")
    return server_url.rsplit("/", 1)[0] + "/" + name


def worker_command(health_port: int, config: Path | None = None) -> list[str]:
    command = [sys.executable, "-m", "nexflow", "worker"]
    if config is not None:
        command += ["--config", str(config)]
    return [*command, "--health-port", str(health_port), "--health-host", "127.0.0.1"]


async def wait_worker(health_port: int, proc: subprocess.Popen[bytes]) -> None:
    """Until the worker's ``/health`` answers 200 (DBOS's launch takes seconds; the
    first worker on a database also migrates DBOS's schema)."""
    async with httpx.AsyncClient() as http:
        for _ in range(600):
            assert proc.poll() is None, "the worker exited during start-up"
            with contextlib.suppress(httpx.HTTPError):
                if (await http.get(f"http://127.0.0.1:{health_port}/health")).status_code == 200:
                    return
            await asyncio.sleep(0.1)
    raise AssertionError("the worker did not become healthy")


class Deployment:
    """Processes sharing one Postgres database, the skills under ``tmp/skills`` and the
    workspaces under ``tmp/shared``; each process has a home ``tmp/home-<name>`` and a
    log ``tmp/<name>.log``."""

    def __init__(self, tmp: Path, db: str, llm_base: str) -> None:
        self.tmp, self.db, self.llm_base = tmp, db, llm_base
        self.shared = tmp / "shared"
        self.skills = tmp / "skills"
        self.procs: list[subprocess.Popen[bytes]] = []
        self.add_skill("ledger-append", {"SKILL.md": LEDGER_SKILL, "run.py": LEDGER_SCRIPT})

    def add_skill(self, name: str, files: dict[str, str], executable: str = "") -> Path:
        folder = self.skills / name
        folder.mkdir(parents=True)
        for file, text in files.items():
            (folder / file).write_text(text)
        if executable:
            (folder / executable).chmod(0o755)
        return folder

    def config(self, name: str, **sections: dict[str, Any]) -> Path:
        """``tmp/<name>.yml``: storage, the shared folders, fast flow polling; each of
        ``sections`` is merged into the section of that name."""
        config: dict[str, Any] = {
            "storage": {"url": self.db},
            "workspace": str(self.shared / "workspace"),
            "workspaces": {"root": str(self.shared / "workspaces")},
            "skills": {"dirs": [str(self.skills)], "watch": False},
            "flows": {"queue_poll_s": 0.05, "per_user_concurrency": None},
        }
        for section, values in sections.items():
            config[section] = {**config.get(section, {}), **values}
        path = self.tmp / f"{name}.yml"
        path.write_text(yaml.safe_dump(config))
        return path

    def spawn(self, name: str, command: list[str], **env: str) -> subprocess.Popen[bytes]:
        with (self.tmp / f"{name}.log").open("ab") as log:
            proc = subprocess.Popen(
                command,
                env=gateway_env(self.tmp / f"home-{name}", self.llm_base, **env),
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        self.procs.append(proc)
        return proc

    async def spawn_worker(self, name: str, config: Path) -> subprocess.Popen[bytes]:
        health = free_port()
        proc = self.spawn(name, worker_command(health, config))
        await wait_worker(health, proc)
        return proc

    def log(self, name: str) -> str:
        return (self.tmp / f"{name}.log").read_text(errors="replace")

    def ledger(self) -> list[str]:
        """Every line the ledger skill wrote, in every workspace."""
        lines: list[str] = []
        for path in sorted(self.shared.rglob("ledger.txt")):
            lines += path.read_text().splitlines()
        return lines

    async def appended(self, tag: str, within: float = 30) -> None:
        """Until the ledger has a line for ``tag`` (the skill's effect is done)."""
        deadline = time.monotonic() + within
        while not any(line.startswith(tag + " ") for line in self.ledger()):
            assert time.monotonic() < deadline, self.ledger()
            await asyncio.sleep(0.01)

    def stop(self) -> None:
        for proc in self.procs:
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
        for proc in self.procs:
            try:
                proc.wait(20)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(10)
