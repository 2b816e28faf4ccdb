"""Two whole gateways on one Postgres: a message accepted by one for a session the other
is running waits for that turn and is run by it, in order; the HTTP caller on the first
gets the reply; every reply is stored and delivered once."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import psycopg

from nexflow.testing.harness import GatewayHarness


async def test_a_session_busy_on_one_replica_takes_the_other_replicas_message(
    tmp_path: Path, pg_url: str
) -> None:
    async with (
        GatewayHarness(tmp_path / "a", storage_url=pg_url, client="openai") as a,
        GatewayHarness(tmp_path / "b", storage_url=pg_url, client="openai") as b,
    ):
        assert a.app is not None and b.app is not None
        assert a.app.gateway.replicas.shared and b.app.gateway.replicas.shared
        assert a.app.gateway.replicas.owner != b.app.gateway.replicas.owner
        session = (await b.chat("hello"))["session"]
        # b's next turn is slow: the session is b's meanwhile (wide enough for a loaded CI)
        b.llm.latency_s = 2.5
        slow = asyncio.create_task(b.chat("first", session))
        for _ in range(100):
            if b.app.gateway.replicas.holding() == [session]:
                break
            await asyncio.sleep(0.02)
        assert b.app.gateway.replicas.holding() == [session]
        second = await a.chat("second", session)  # accepted by a, run by b after "first"
        assert second["reply"] == "Echo: second"
        assert (await slow)["reply"] == "Echo: first"
        asked = [_said(r) for r in b.llm.requests]
        assert asked.index("first") < asked.index("second")  # b ran a's message after its own
        assert "second" not in [_said(r) for r in a.llm.requests]
        third = await a.chat("third", session)  # the session is free again: a runs it
        assert third["reply"] == "Echo: third"
        for _ in range(100):  # both settle their leases once idle
            if not a.app.gateway.replicas.holding() and not b.app.gateway.replicas.holding():
                break
            await asyncio.sleep(0.02)
        assert not a.app.gateway.replicas.holding() and not b.app.gateway.replicas.holding()

    with psycopg.connect(pg_url) as conn:
        history = conn.execute(
            "SELECT role, content FROM messages WHERE session_id=%s ORDER BY id", (session,)
        ).fetchall()
        per_inbox = conn.execute(
            "SELECT i.id, i.status, (SELECT COUNT(*) FROM outbox o WHERE o.inbox_id=i.id), "
            "(SELECT MIN(o.status) FROM outbox o WHERE o.inbox_id=i.id) FROM inbox i"
        ).fetchall()
    assert [c for r, c in history if r == "user"] == ["hello", "first", "second", "third"]
    assert [c for r, c in history if r == "assistant"] == [
        "Echo: hello",
        "Echo: first",
        "Echo: second",
        "Echo: third",
    ]
    # One reply each, and each reached its HTTP caller (the one run on b for a's caller too).
    assert all(row[1:] == ("done", 1, "delivered") for row in per_inbox), per_inbox


def _said(request: dict[str, Any]) -> str:
    """The user's message a model request answers."""
    return str([m for m in request["messages"] if m["role"] == "user"][-1]["content"])


async def test_a_starting_replica_leaves_a_live_replicas_running_turn_alone(
    tmp_path: Path, pg_url: str
) -> None:
    async with GatewayHarness(tmp_path / "a", storage_url=pg_url, client="openai") as a:
        assert a.app is not None
        session = (await a.chat("hello"))["session"]
        a.llm.latency_s = 4.0  # still running while the second replica starts
        slow = asyncio.create_task(a.chat("slow", session))
        for _ in range(100):
            if a.app.gateway.replicas.holding() == [session]:
                break
            await asyncio.sleep(0.02)
        async with GatewayHarness(tmp_path / "b", storage_url=pg_url, client="openai") as b:
            assert b.app is not None
            with psycopg.connect(pg_url) as conn:
                running = conn.execute("SELECT COUNT(*) FROM inbox WHERE status='running'")
                assert running.fetchone() == (1,)  # recovery saw it and left it to a
            assert (await slow)["reply"] == "Echo: slow"
            assert "slow" not in [_said(r) for r in b.llm.requests]
    with psycopg.connect(pg_url) as conn:
        attempts = conn.execute("SELECT attempts FROM inbox ORDER BY id").fetchall()
    assert attempts == [(1,), (1,)]  # each run once
