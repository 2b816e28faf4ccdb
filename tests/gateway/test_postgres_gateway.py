"""The whole gateway on Postgres (``storage.url``): a chat turn over HTTP with the fake
model, then a restart, and the history is still there; the flow engine's tables are in
the same database; no SQLite file is made."""

from __future__ import annotations

from pathlib import Path

import psycopg

from nexflow.storage.engine import PostgresEngine
from nexflow.testing.harness import GatewayHarness


async def test_chat_on_postgres_survives_a_restart(tmp_path: Path, pg_url: str) -> None:
    home = tmp_path / "home"
    async with GatewayHarness(home, storage_url=pg_url, client="openai") as gw:
        assert gw.app is not None
        assert isinstance(gw.app.storage.engine, PostgresEngine)
        first = await gw.chat("hello from postgres")
        assert first["reply"] == "Echo: hello from postgres"
        session = first["session"]
        second = await gw.chat("and again", session)
        assert second["session"] == session
        # The flow engine (DBOS) keeps its tables in the same database, schema "dbos".
        assert gw.app.flows is not None
        assert await gw.app.flows.runs("nobody", everyone=True) == []
    with psycopg.connect(pg_url) as conn:
        found = conn.execute("SELECT to_regclass('dbos.workflow_status')").fetchone()
    assert found is not None and found[0] is not None

    with psycopg.connect(pg_url) as conn:
        rows = conn.execute(
            "SELECT role, content FROM messages WHERE session_id = %s ORDER BY id", (session,)
        ).fetchall()
    assert rows == [
        ("user", "hello from postgres"),
        ("assistant", "Echo: hello from postgres"),
        ("user", "and again"),
        ("assistant", "Echo: and again"),
    ]

    async with GatewayHarness(home, storage_url=pg_url, client="openai") as gw:
        detail = (await gw.http.get(f"/api/v1/sessions/{session}")).json()
        assert [m["content"] for m in detail["messages"]] == [r[1] for r in rows]
        third = await gw.chat("still here?", session)
        assert third["reply"] == "Echo: still here?"
        health = await gw.http.get("/ready")
        assert health.status_code == 200, health.text
    assert not (home / "nexflow.db").exists()  # nothing went to a SQLite file
