"""A reminder created in chat fires at its time even though the gateway restarted; with no
browser tab open it waits (parked) and reaches the page when one connects and acks it."""

import asyncio
import json
import sqlite3
from contextlib import closing
from datetime import UTC, datetime, timedelta
from pathlib import Path

import websockets

from nexflow.testing.fake_llm import Reply
from nexflow.testing.harness import GatewayHarness


def delivered_texts(db: Path) -> list[tuple[str, str]]:
    with closing(sqlite3.connect(db)) as conn:
        rows = conn.execute("SELECT payload, status FROM outbox ORDER BY id").fetchall()
    # The reminder itself, not the chat reply that mentions it (that one answers a message).
    return [
        (payload, status)
        for payload, status in rows
        if "water the plants" in payload and '"reply_to":null' in payload
    ]


async def test_reminder_survives_a_restart(tmp_path: Path) -> None:
    home = tmp_path / "home"
    async with GatewayHarness(home, client="openai") as gw:
        due = datetime.now(UTC) + timedelta(seconds=3)
        gw.llm.push(
            Reply(
                tool_calls=(("reminder_add", {"text": "water the plants", "at": due.isoformat()}),)
            )
        )
        created = await gw.chat("remind me to water the plants in 3 seconds")
        assert created["tool_calls"][0]["ok"] is True, created
        assert "Reminder set" in created["tool_calls"][0]["result"]
        session = created["session"]
    # The gateway is down while the reminder comes due.
    await asyncio.sleep(max(0.0, (due - datetime.now(UTC)).total_seconds()) + 0.5)
    db = home / "nexflow.db"
    assert delivered_texts(db) == []
    async with GatewayHarness(home, client="openai") as gw:
        for _ in range(100):
            sent = delivered_texts(db)
            if sent and sent[0][1] == "parked":
                break
            await asyncio.sleep(0.05)
        assert len(sent) == 1 and sent[0][1] == "parked"  # fired; no tab is open to see it
        assert f'"session_id":"{session}"' in sent[0][0]  # back to the chat it came from
        async with websockets.connect(f"{gw.url.replace('http', 'ws')}/ws/chat/{session}") as ws:
            async with asyncio.timeout(15):
                while True:
                    frame = json.loads(await ws.recv())
                    if frame.get("type") == "reply" and "water the plants" in str(frame):
                        break
            await ws.send(json.dumps({"type": "ack", "outbox_id": frame["outbox_id"]}))
            for _ in range(100):
                if delivered_texts(db)[0][1] == "delivered":
                    break
                await asyncio.sleep(0.05)
        assert delivered_texts(db)[0][1] == "delivered"
        await asyncio.sleep(0.3)
    assert len(delivered_texts(db)) == 1  # fired once, not again on the next start
