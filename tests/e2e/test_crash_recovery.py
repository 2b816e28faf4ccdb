"""SIGKILL a real `nexflow serve` mid-conversation, start it again: every accepted message
is answered exactly once, nothing is lost or duplicated."""

import asyncio
import contextlib
import os
import signal
import sqlite3
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from nexflow.testing.harness import free_port

pytestmark = pytest.mark.slow


@contextlib.contextmanager
def process(args: list[str], env: dict[str, str], log: Path) -> Iterator[subprocess.Popen[bytes]]:
    with log.open("ab") as out:
        proc = subprocess.Popen(args, env=env, stdout=out, stderr=subprocess.STDOUT)
    try:
        yield proc
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.wait(10)


async def wait_healthy(url: str, proc: subprocess.Popen[bytes]) -> None:
    async with httpx.AsyncClient() as http:
        for _ in range(300):
            assert proc.poll() is None, "the gateway exited during start-up"
            with contextlib.suppress(httpx.HTTPError):
                if (await http.get(url + "/health")).status_code == 200:
                    return
            await asyncio.sleep(0.05)
    raise AssertionError("the gateway did not become healthy")


def db_rows(db: Path, sql: str) -> list[tuple[object, ...]]:
    with contextlib.closing(sqlite3.connect(f"file:{db}?mode=ro", uri=True)) as conn:
        return conn.execute(sql).fetchall()


async def test_sigkill_mid_conversation_then_restart(tmp_path: Path) -> None:
    llm_port, port = free_port(), free_port()
    url = f"http://127.0.0.1:{port}"
    home = tmp_path / "home"
    env = {k: v for k, v in os.environ.items() if not k.startswith("NEXFLOW_")}
    env.update(
        {
            "NEXFLOW_HOME": str(home),
            "NEXFLOW_LLM_MODEL": "openai/fake",
            "NEXFLOW_LLM_API_BASE": f"http://127.0.0.1:{llm_port}/v1",
            "NEXFLOW_LLM_API_KEY": "k",
            "NEXFLOW_LLM__OLLAMA__PROBE": "false",
            "LITELLM_LOCAL_MODEL_COST_MAP": "True",
        }
    )
    serve = [sys.executable, "-m", "nexflow", "serve", "--port", str(port)]
    fake = [
        sys.executable,
        "-m",
        "nexflow.testing.fake_llm",
        "--port",
        str(llm_port),
        "--latency-ms",
        "250",
    ]
    log = tmp_path / "gateway.log"
    db = home / "nexflow.db"

    async def conversation(http: httpx.AsyncClient, name: str, turns: int) -> None:
        session = None
        for i in range(turns):
            body = {"message": f"{name} turn {i}", **({"session": session} if session else {})}
            resp = await http.post(
                url + "/api/v1/chat", json=body, headers={"Idempotency-Key": f"{name}-{i}"}
            )
            session = resp.json()["session"]

    async def burst(http: httpx.AsyncClient, session: str, count: int) -> None:
        await asyncio.gather(
            *(
                http.post(url + "/api/v1/chat", json={"message": f"burst {i}", "session": session})
                for i in range(count)
            ),
            return_exceptions=True,
        )

    with process(fake, env, tmp_path / "fake.log"):
        with process(serve, env, log) as gateway:
            await wait_healthy(url, gateway)
            async with httpx.AsyncClient(timeout=30) as http:
                warm = await http.post(url + "/api/v1/chat", json={"message": "warm up"})
                burst_session = warm.json()["session"]
                tasks = [asyncio.create_task(conversation(http, f"s{n}", 20)) for n in range(4)]
                tasks.append(asyncio.create_task(burst(http, burst_session, 8)))
                await asyncio.sleep(1.5)
                gateway.send_signal(signal.SIGKILL)
                gateway.wait(10)
                await asyncio.gather(*tasks, return_exceptions=True)

        accepted = db_rows(db, "SELECT id FROM inbox")
        pending_at_crash = db_rows(db, "SELECT id FROM inbox WHERE status='pending'")
        answered_at_crash = db_rows(db, "SELECT id FROM inbox WHERE status='done'")
        assert len(pending_at_crash) >= 4, "the kill must land mid-conversation"
        assert len(answered_at_crash) >= 4

        with process(serve, env, log) as gateway:
            await wait_healthy(url, gateway)
            for _ in range(400):
                if not db_rows(db, "SELECT id FROM inbox WHERE status='pending'") and not db_rows(
                    db, "SELECT id FROM outbox WHERE status='pending'"
                ):
                    break
                await asyncio.sleep(0.05)
            # A client retrying with its idempotency key gets the stored reply, not a new turn.
            async with httpx.AsyncClient(timeout=30) as http:
                again = await http.post(
                    url + "/api/v1/chat",
                    json={"message": "s0 turn 0"},
                    headers={"Idempotency-Key": "s0-0"},
                )
                assert again.json()["reply"] == "Echo: s0 turn 0"
            gateway.send_signal(signal.SIGTERM)
            # uvicorn re-raises SIGTERM after a graceful shutdown; systemd counts that as clean.
            assert gateway.wait(15) in (0, -signal.SIGTERM)

    assert db_rows(db, "SELECT COUNT(*) FROM inbox") == [(len(accepted),)]
    assert db_rows(db, "SELECT COUNT(*) FROM inbox WHERE status != 'done'") == [(0,)]
    per_inbox = db_rows(
        db,
        """
        SELECT i.id,
               (SELECT COUNT(*) FROM outbox o WHERE o.inbox_id = i.id),
               (SELECT COUNT(*) FROM messages m WHERE m.inbox_id = i.id AND m.role = 'user'),
               (SELECT COUNT(*) FROM messages m WHERE m.inbox_id = i.id AND m.role = 'assistant')
        FROM inbox i""",
    )
    assert per_inbox and all(row[1:] == (1, 1, 1) for row in per_inbox), per_inbox
    assert db_rows(db, "SELECT COUNT(*) FROM outbox WHERE status != 'delivered'") == [(0,)]
    assert b"inbox_recovered" in log.read_bytes()
    assert log.read_bytes().count(b"gateway_stopped") == 1  # the killed run never got to stop
