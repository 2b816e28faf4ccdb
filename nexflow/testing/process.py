"""A real ``nexflow serve`` process for crash and restart tests: start it, wait until it
answers, read its database while it runs (read-only), kill it however the test likes."""

from __future__ import annotations

import asyncio
import contextlib
import os
import sqlite3
import subprocess
import sys
from collections.abc import Iterator, Mapping
from pathlib import Path

import httpx


@contextlib.contextmanager
def process(args: list[str], env: dict[str, str], log: Path) -> Iterator[subprocess.Popen[bytes]]:
    """Run ``args`` with its output appended to ``log``; killed on the way out."""
    with log.open("ab") as out:
        proc = subprocess.Popen(args, env=env, stdout=out, stderr=subprocess.STDOUT)
    try:
        yield proc
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.wait(10)


def serve_command(port: int) -> list[str]:
    return [sys.executable, "-m", "nexflow", "serve", "--port", str(port)]


def gateway_env(
    home: Path, llm_base: str, *, keyword_memory: bool = True, **extra: str
) -> dict[str, str]:
    """The environment of a gateway at ``home`` using the fake model at ``llm_base``;
    ``keyword_memory`` keeps the local embedding model out of it (seconds, ~500 MB)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("NEXFLOW_")}
    env.update(
        {
            "NEXFLOW_HOME": str(home),
            "NEXFLOW_LLM_MODEL": "openai/fake",
            "NEXFLOW_LLM_API_BASE": llm_base,
            "NEXFLOW_LLM_API_KEY": "k",
            "NEXFLOW_LLM__OLLAMA__PROBE": "false",
            "LITELLM_LOCAL_MODEL_COST_MAP": "True",
            **extra,
        }
    )
    if keyword_memory:
        env["NEXFLOW_MEMORY__EMBEDDER"] = "none"
    return env


async def wait_healthy(url: str, proc: subprocess.Popen[bytes]) -> None:
    async with httpx.AsyncClient() as http:
        for _ in range(300):
            assert proc.poll() is None, "the gateway exited during start-up"
            with contextlib.suppress(httpx.HTTPError):
                if (await http.get(url + "/health")).status_code == 200:
                    return
            await asyncio.sleep(0.05)
    raise AssertionError("the gateway did not become healthy")


def db_rows(
    db: Path, sql: str, args: Mapping[str, object] | tuple[object, ...] = ()
) -> list[tuple[object, ...]]:
    with contextlib.closing(sqlite3.connect(f"file:{db}?mode=ro", uri=True)) as conn:
        return conn.execute(sql, args).fetchall()
