import sqlite3
import time
from pathlib import Path

import pytest

from nexflow.bus.events import InboundEvent, TextOut
from nexflow.storage import AuditRecord, MigrationError, NewMessage, SQLStorage
from nexflow.storage.migrations import MIGRATIONS


async def new_event(
    storage: SQLStorage, text: str = "hi", external: str | None = None
) -> InboundEvent:
    user = await storage.create_user("owner", "owner", "web", "owner")
    session = await storage.ensure_session("s1", user, "web", "chat")
    return InboundEvent(
        channel="web",
        chat_id="chat",
        sender_id="owner",
        message=text,
        user_id=user,
        session_id=session.id,
        external_id=external,
    )


async def test_schema_version(storage: SQLStorage) -> None:
    assert storage.schema_version == MIGRATIONS[-1][0]
    assert await storage.ping()


async def test_sqlite_runs_in_wal_mode(tmp_path: Path) -> None:
    store = SQLStorage(tmp_path / "nexflow.db")
    await store.open()
    await store.close()
    with sqlite3.connect(tmp_path / "nexflow.db") as conn:
        assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"


async def test_newer_schema_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "db.sqlite"
    first = SQLStorage(path)
    await first.open()
    await first.close()
    with sqlite3.connect(path) as conn:
        conn.execute("INSERT INTO schema_version VALUES (999, 'future', 0)")
    second = SQLStorage(path)
    with pytest.raises(MigrationError, match="newer"):
        await second.open()
    await second.close()


async def test_accept_drops_duplicate_deliveries(storage: SQLStorage) -> None:
    event = await new_event(storage, external="tg-1")
    first, dup1 = await storage.accept(event)
    again, dup2 = await storage.accept(event)
    assert (dup1, dup2) == (False, True)
    assert first == again
    assert [i.id for i in await storage.pending_inbox()] == [first]


async def test_complete_is_atomic_and_idempotent(storage: SQLStorage) -> None:
    event = await new_event(storage)
    inbox_id, _ = await storage.accept(event)
    reply = TextOut(channel="web", chat_id="chat", session_id="s1", text="hello")
    messages = [NewMessage("user", "hi"), NewMessage("assistant", "hello")]
    out1 = await storage.complete(inbox_id, messages, reply, [AuditRecord("llm_call", "m")])
    out2 = await storage.complete(inbox_id, messages, reply)
    assert out1 == out2
    history = await storage.history("s1", 10)
    assert [(m.role, m.content) for m in history] == [("user", "hi"), ("assistant", "hello")]
    assert await storage.pending_inbox() == []
    assert len(await storage.audit_tail(10, "llm_call")) == 1


async def test_outbox_keeps_chat_order_across_retries(storage: SQLStorage) -> None:
    a1 = await storage.enqueue(TextOut(channel="tg", chat_id="A", text="1"))
    a2 = await storage.enqueue(TextOut(channel="tg", chat_id="A", text="2"))
    b1 = await storage.enqueue(TextOut(channel="tg", chat_id="B", text="x"))
    now = time.time()
    assert [i.id for i in await storage.due_outbox(now, 10)] == [a1, a2, b1]
    await storage.mark_retry(a1, "network down", now + 60)
    # a2 must wait behind a1; chat B is unaffected.
    assert [i.id for i in await storage.due_outbox(now, 10)] == [b1]
    assert await storage.next_outbox_due() == pytest.approx(now, abs=5)  # b1
    await storage.mark_delivered(b1)
    # a2 is due but waits behind a1, so the dispatcher sleeps until a1's retry (no spinning).
    assert await storage.next_outbox_due() == pytest.approx(now + 60, abs=5)
    assert [i.id for i in await storage.due_outbox(now + 61, 10)] == [a1, a2]
    await storage.mark_failed(a1, "blocked by user")
    item = await storage.get_outbox(a1)
    assert item is not None and item.status == "failed" and item.last_error == "blocked by user"


async def test_tasks(storage: SQLStorage) -> None:
    task = await storage.create_task("reindex", {"path": "/x"})
    await storage.update_task(task.id, status="running", progress=0.5)
    got = await storage.get_task(task.id)
    assert got is not None and got.status == "running" and got.progress == 0.5
    assert got.payload == {"path": "/x"}


async def test_chat_session_is_reused_per_chat(storage: SQLStorage) -> None:
    user = await storage.create_user("p", "user", "telegram", "42")
    first = await storage.chat_session(user, "telegram", "100")
    second = await storage.chat_session(user, "telegram", "100")
    other = await storage.chat_session(user, "telegram", "200")
    assert first.id == second.id != other.id
