"""``GET /api/v1/sessions/{id}``'s timeline: text, tool lines and cards that show what is
true now (the panel's current state, the patch's status, the confirmation's status)."""

from __future__ import annotations

import json
import sqlite3
from contextlib import closing
from pathlib import Path
from typing import Any

from nexflow.bus.events import ConfirmationOut, TextOut
from nexflow.storage import SQLStorage
from nexflow.storage.base import AuditRecord
from nexflow.testing.fake_llm import Reply
from nexflow.testing.harness import GatewayHarness

Item = dict[str, Any]


async def timeline(gw: GatewayHarness, session: str) -> list[Item]:
    resp = await gw.http.get(f"/api/v1/sessions/{session}")
    assert resp.status_code == 200
    data = resp.json()
    assert "messages" in data  # kept for older clients
    items: list[Item] = data["timeline"]
    return items


def kinds(items: list[Item]) -> list[str]:
    return [i["kind"] for i in items]


async def test_text_tool_lines_and_a_live_panel_card(gateway: GatewayHarness) -> None:
    first = await gateway.chat("what time is it?")
    session = first["session"]
    await gateway.chat("/panel new todo", session=session)
    items = await timeline(gateway, session)
    assert kinds(items) == ["user", "tool_call", "tool_result", "assistant", "user", "card"]
    call, result, reply = items[1:4]
    assert call == {
        "kind": "tool_call",
        "name": "get_time",
        "arguments": "{}",
        "label": "Clock: current time",  # the call in plain words (GraphStudio's tool lines)
    }
    assert result["name"] == "get_time" and result["ok"] is True
    assert reply["text"].startswith("The tool get_time returned:")
    assert isinstance(reply["outbox_id"], int)
    card = items[-1]
    # The card replaces the stored "[panel todo] To-do" text, with the panel as it is now.
    assert card["status"] == "live" and card["outbound"]["kind"] == "panel_snapshot"
    assert "milk" not in card["outbound"]["text"]
    await gateway.http.post("/api/v1/panels/todo/tools/add_item", json={"text": "milk"})
    card = (await timeline(gateway, session))[-1]
    assert "milk" in card["outbound"]["text"]
    assert any(b["label"] == "⟳ Sync" for b in card["outbound"]["buttons"])  # kept
    await gateway.http.delete("/api/v1/panels/todo")
    gone = (await timeline(gateway, session))[-1]
    assert gone["status"] == "gone" and gone["outbound"]["buttons"] == []


async def test_messages_outside_turns_are_cards_in_order(gateway: GatewayHarness) -> None:
    session = (await gateway.chat("hello"))["session"]
    assert gateway.app is not None
    out = TextOut(channel="web", chat_id=session, session_id=session, text="⏰ Reminder: tea")
    oid = await gateway.app.outbox.post(out)
    await gateway.chat("after the reminder", session=session)
    items = await timeline(gateway, session)
    assert kinds(items) == ["user", "assistant", "card", "user", "assistant"]
    assert items[2]["outbox_id"] == oid and items[2]["outbound"]["text"] == "⏰ Reminder: tea"
    assert items[2]["delivered"] is False  # no tab has acknowledged it


async def test_confirmation_cards_carry_their_current_status(gateway: GatewayHarness) -> None:
    session = (await gateway.chat("hello"))["session"]
    assert gateway.app is not None
    storage = gateway.app.storage
    for cid in ("c-open", "c-done", "c-late"):
        await gateway.app.outbox.post(
            ConfirmationOut(
                channel="web",
                chat_id=session,
                session_id=session,
                confirmation_id=cid,
                title="Run?",
                detail="$ echo",
                expires_at=0 if cid == "c-late" else 4e9,
            )
        )
    records = [
        AuditRecord("confirmation", "Run?", outcome, None, session, {"id": cid})
        for cid, outcome in [
            ("c-open", "requested"),
            ("c-done", "requested"),
            ("c-done", "approved"),
            ("c-late", "requested"),
        ]
    ]
    await storage.audit(records)
    cards = [i for i in await timeline(gateway, session) if i["kind"] == "card"]
    status = {c["outbound"]["confirmation_id"]: c["status"] for c in cards}
    assert status == {"c-open": "pending", "c-done": "approved", "c-late": "expired"}


async def test_patch_card_shows_the_patch_status(gateway: GatewayHarness) -> None:
    session = (await gateway.chat("/panel new notes"))["session"]
    await gateway.chat("/panel new todo", session=session)
    await gateway.http.post("/api/v1/panels/todo/tools/add_item", json={"text": "buy milk"})
    note = {"title": "buy milk", "body": "from the to-do list"}
    change = {"target": "panel:notes", "summary": "Add buy milk", "append": {"notes": [note]}}
    gateway.llm.push(Reply(text=json.dumps({"changes": [change]})))
    await gateway.chat("/sync todo", session=session)
    (card,) = [
        i
        for i in await timeline(gateway, session)
        if i["kind"] == "card" and i["outbound"]["kind"] == "patch_review"
    ]
    assert card["status"] == "pending"
    patch_id = card["outbound"]["patch_id"]
    assert (await gateway.http.post(f"/api/v1/patches/{patch_id}/accept")).status_code == 200
    (card,) = [
        i for i in await timeline(gateway, session) if i.get("outbox_id") == card["outbox_id"]
    ]
    assert card["status"] == "merged" and card["merge_commit"]


async def test_approval_status_reads_approvals_and_tolerates_an_older_schema(
    tmp_path: Path,
) -> None:
    db = tmp_path / "n.db"
    storage = SQLStorage(db)
    await storage.open()
    await storage.audit([AuditRecord("confirmation", "t", "declined", None, None, {"id": "old"})])
    await storage.close()
    with closing(sqlite3.connect(db)) as conn:
        conn.execute(
            "INSERT INTO approvals (id, user_id, channel, chat_id, title, detail, call_key, "
            "status, created_at, expires_at) VALUES ('new','u','web','c','t','d','k','used',0,0)"
        )
        conn.commit()
    storage = SQLStorage(db)
    await storage.open()
    assert await storage.approval_status(["old", "new", "none"]) == {
        "old": "declined",
        "new": "used",
    }
    await storage.close()
    with closing(sqlite3.connect(db)) as conn:
        conn.execute("DROP TABLE approvals")
        conn.commit()
    storage = SQLStorage(db)
    await storage.open()
    assert await storage.approval_status(["old", "new"]) == {"old": "declined"}
    await storage.close()
