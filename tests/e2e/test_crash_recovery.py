"""SIGKILL a real `nexflow serve` mid-conversation, start it again: every accepted message
is answered exactly once, nothing is lost or duplicated."""

import asyncio
import signal
import sys
from pathlib import Path

import httpx
import pytest

from nexflow.testing.harness import free_port
from nexflow.testing.process import db_rows, gateway_env, process, serve_command, wait_healthy

pytestmark = pytest.mark.slow


async def test_sigkill_mid_conversation_then_restart(tmp_path: Path) -> None:
    llm_port, port = free_port(), free_port()
    url = f"http://127.0.0.1:{port}"
    home = tmp_path / "home"
    env = gateway_env(home, f"http://127.0.0.1:{llm_port}/v1", keyword_memory=False)
    serve = serve_command(port)
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
        pending_at_crash = db_rows(db, "SELECT id FROM inbox WHERE status IN ('pending','running')")
        answered_at_crash = db_rows(db, "SELECT id FROM inbox WHERE status='done'")
        assert len(pending_at_crash) >= 4, "the kill must land mid-conversation"
        assert len(answered_at_crash) >= 4

        with process(serve, env, log) as gateway:
            await wait_healthy(url, gateway)
            for _ in range(400):
                open_turns = "SELECT id FROM inbox WHERE status IN ('pending','running')"
                if not db_rows(db, open_turns) and not db_rows(
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
    assert_answered_once(db)
    assert b"inbox_recovered" in log.read_bytes()
    assert log.read_bytes().count(b"gateway_stopped") == 1  # the killed run never got to stop


def assert_answered_once(db: Path) -> None:
    """Each accepted message has one reply and one history entry each way; every reply
    reached its caller or waits for the page."""
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
    # Every reply reached its caller, or (its HTTP caller died with the first process and no
    # tab follows the session) waits for the page: parked, or queued behind a parked reply
    # of its session, in order. None failed, none is lost.
    waiting = db_rows(
        db,
        "SELECT o.status, o.session_id, EXISTS (SELECT 1 FROM outbox p WHERE "
        "p.session_id = o.session_id AND p.status = 'parked' AND p.id <= o.id) "
        "FROM outbox o WHERE o.status != 'delivered'",
    )
    assert all(row[0] in ("parked", "pending") and row[1] and row[2] for row in waiting), waiting
