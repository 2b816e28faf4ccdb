"""``nexflow migrate sqlite-to-postgres``: a populated SQLite install (through the real
storage API, panel and patch stores, reminders and usage) moves to a real Postgres with
equal counts and checksums; a second run is refused; a changed value is a MISMATCH."""

from __future__ import annotations

import sqlite3
import time
from datetime import UTC, timedelta
from pathlib import Path

import psycopg
import pytest

from nexflow import cli
from nexflow.bus.events import InboundEvent, TextOut
from nexflow.memory.keywords import keyword_terms
from nexflow.memory.pages import NewPage
from nexflow.memory.pg_store import PgMemoryIndex
from nexflow.memory.store import MemoryIndex
from nexflow.panels.runtime.store import PanelStore
from nexflow.panels.runtime.versions import Change
from nexflow.storage import AuditRecord, NewMessage, SQLStorage
from nexflow.storage import transfer as transfer_module
from nexflow.storage.engine import PostgresEngine
from nexflow.storage.repo_usage import UsageRow
from nexflow.storage.transfer import TransferRefused, transfer, verify
from nexflow.tasks import ReminderService, ReminderTarget
from nexflow.tasks.jobstore import job_store_for
from nexflow.workspace.api import Patch
from nexflow.workspace.store import PatchStore

TABLES = {
    "users",
    "identities",
    "sessions",
    "messages",
    "inbox",
    "outbox",
    "audit",
    "panels",
    "panel_versions",
    "patches",
    "reminder_jobs",
    "llm_usage",
    "flow_trigger_jobs",
    "memory_pages",
    "memory_page_vectors",
}


async def _nothing(channel: str, chat_id: str, session_id: str, text: str) -> None:
    return None


def page_out(memory: Path, session_id: str, user_id: str) -> None:
    """Two context pages in the memory index: one paged out (with a vector), one not yet."""
    index = MemoryIndex(memory)
    try:
        page = index.pages.begin(
            NewPage(user_id, session_id, 1, 4, 4, 120, "draft", time.time() - 60, time.time())
        )
        index.pages.finish(
            page.id,
            "Bob asked about the lighthouse keeper's schedule",
            "llm",
            ["Bob likes lighthouses"],
            True,
            False,
            "вопрос 0 ✓ lighthouse keeper",
        )
        index.pages.store_vectors("fake-embed", [(page.id, [0.25, -0.5, 1.0])])
        index.pages.begin(NewPage(user_id, session_id, 5, 8, 4, 90, "x", time.time(), time.time()))
    finally:
        index.close()


async def populate(path: Path) -> dict[str, int]:
    """A small but complete install (its memory index next to it); returns the rows
    written per table."""
    storage = SQLStorage(path)
    await storage.open()
    try:
        owner = await storage.create_user("owner", "owner", "web", "owner")
        bob = await storage.create_user("Боб", "user", "telegram", "4242")
        for user, channel, chat in ((owner, "web", "chat-o"), (bob, "telegram", "4242")):
            session = await storage.chat_session(user, channel, chat)
            for turn in range(3):
                event = InboundEvent(
                    channel=channel,
                    chat_id=chat,
                    sender_id=chat,
                    message=f"вопрос {turn} ✓",
                    user_id=user,
                    session_id=session.id,
                    external_id=f"{chat}-{turn}",
                )
                inbox_id, _ = await storage.accept(event)
                call = [{"id": "c1", "type": "function", "function": {"name": "get_time"}}]
                await storage.complete(
                    inbox_id,
                    [
                        NewMessage("user", event.message),
                        NewMessage("assistant", "", tool_calls=call),
                        NewMessage("tool", "12:00", tool_call_id="c1", name="get_time"),
                        NewMessage("assistant", f"ответ {turn}"),
                    ],
                    TextOut(channel=channel, chat_id=chat, session_id=session.id, text="ok"),
                    [AuditRecord("llm_call", "fake-model", user_id=user, data={"n": turn})],
                )
        await storage.audit([AuditRecord("tool", "get_time", "ok", owner, None, {"x": 1.5})])
        await storage.record_usage(
            owner, "2026-12-05", "chat", [UsageRow("fake-model", 3, 120, 45, 0.0125)]
        )
        await storage.record_usage(bob, "2026-12-05", "chat", [UsageRow("fake-model", 2, 7, 9)])
        panels = PanelStore(storage)
        record = await panels.create(
            "todo",
            "todo",
            owner,
            "Todo",
            "<panel/>",
            Change(kind="create", state={"items": []}, view={}),
        )
        await panels.commit(
            record,
            Change(
                kind="tool",
                state={"items": [{"text": "milk", "done": False}]},
                view={},
                tool="add",
                args={"text": "milk"},
                triggered_by="ai",
                user_id=owner,
            ),
        )
        now = time.time()
        await PatchStore(storage).insert(
            Patch(
                "p1",
                f"{owner}/default",
                owner,
                "file:notes/a.md",
                "pending",
                "A note",
                "nexflow/patch/p1",
                "0" * 40,
                "chat",
                "",
                now,
                now,
            ),
            "1" * 40,
        )
    finally:
        await storage.close()
    reminders = ReminderService(path, _nothing, timezone=UTC)
    await reminders.start()
    try:
        target = ReminderTarget(owner, "web", "chat-o", "")
        await reminders.add_in(target, "stretch", timedelta(hours=1))
        await reminders.add_cron(target, "stand-up", "0 9 * * 1-5")
    finally:
        await reminders.stop()
    page_out(path.parent / "memory.db", session.id, bob)
    triggers = job_store_for(path, table="flow_trigger_jobs")  # as the flow triggers make it
    triggers.open()
    triggers.shutdown()
    conn = sqlite3.connect(path)
    with conn:
        conn.execute(
            "INSERT INTO flow_trigger_jobs VALUES (?, ?, ?, ?, ?)",
            (f"{owner}:daily:0", owner, time.time() + 3600, b"\x80\x05job-state", time.time()),
        )
    conn.close()
    conn = sqlite3.connect(path)
    try:
        return {
            t: conn.execute(f'SELECT COUNT(*) FROM "{t}"').fetchone()[0]
            for t in sorted(TABLES)
            if not t.startswith("memory_")
        } | {"memory_pages": 2, "memory_page_vectors": 1}
    finally:
        conn.close()


async def test_sqlite_install_moves_to_postgres_with_equal_counts_and_checksums(
    tmp_path: Path, pg_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    source = tmp_path / "nexflow.db"
    written = await populate(source)
    assert written["messages"] == 24 and written["reminder_jobs"] == 2
    monkeypatch.setattr(transfer_module, "PROGRESS_ROWS", 10)  # see the progress lines
    lines: list[str] = []
    memory = tmp_path / "memory.db"
    reports = await transfer(source, pg_url, memory=memory, out=lines.append, batch=5)
    by_name = {r.name: r for r in reports}
    assert set(by_name) >= TABLES
    assert all(r.ok for r in reports), [r for r in reports if not r.ok]
    for table, rows in written.items():
        assert by_name[table].source_rows == by_name[table].target_rows == rows
    assert any(line.startswith("  messages: 10 of 24 rows") for line in lines), lines
    order = [r.name for r in reports]
    assert order.index("users") < order.index("sessions") < order.index("messages")
    assert order.index("panels") < order.index("panel_versions")
    assert order.index("memory_pages") < order.index("memory_page_vectors")

    # A second run is refused: the target holds data now.
    with pytest.raises(TransferRefused, match="already holds Nexflow data"):
        await transfer(source, pg_url, out=lines.append)

    # One changed value is caught by the checksum, even with equal counts.
    assert all(r.ok for r in await verify(source, pg_url, memory=memory))
    with psycopg.connect(pg_url, autocommit=True) as conn:
        conn.execute("UPDATE llm_usage SET cost_usd = 0.0126 WHERE calls = 3")
    reports = await verify(source, pg_url, memory=memory)
    bad = [r for r in reports if not r.ok]
    assert [r.name for r in bad] == ["llm_usage"]
    assert bad[0].source_rows == bad[0].target_rows

    session_id = await gateway_reads_it_back(pg_url)
    memory_index_finds_the_page(pg_url, session_id)


async def test_cli_prints_each_table_and_refuses_a_second_run(
    tmp_path: Path,
    pg_url: str,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    home = tmp_path / "home"
    home.mkdir()
    await populate(home / "nexflow.db")
    monkeypatch.setenv("NEXFLOW_HOME", str(home))
    monkeypatch.delenv("NEXFLOW_STORAGE__URL", raising=False)
    argv = ["migrate", "sqlite-to-postgres", "--to", pg_url]
    assert await _cli(argv) == 0
    printed = capsys.readouterr().out
    assert "s3cret" not in printed and "postgres:***@" in printed
    assert "flows: no flow runs in flight" in printed
    assert "messages" in printed and "MISMATCH" not in printed
    assert "all 20 tables match" in printed or "tables match" in printed
    assert f"workspaces: the git repositories in {home / 'workspaces'}" in printed
    assert "its context pages (summaries of paged-out history) were copied" in printed
    assert "memory_pages" in printed

    assert await _cli(argv) == 2
    assert "already holds Nexflow data" in capsys.readouterr().err

    with psycopg.connect(pg_url, autocommit=True) as conn:
        conn.execute("UPDATE messages SET content = 'tampered' WHERE id = 3")
    assert await _cli([*argv, "--verify"]) == 1
    printed = capsys.readouterr().out
    assert "MISMATCH in 1 of" in printed
    line = next(x for x in printed.splitlines() if x.startswith("messages "))
    assert line.endswith("MISMATCH") and " != " in line


async def test_refused_while_flow_runs_are_in_flight(
    tmp_path: Path,
    pg_url: str,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    home = tmp_path / "home"
    home.mkdir()
    await populate(home / "nexflow.db")
    flows = sqlite3.connect(home / "flows.sqlite3")
    flows.execute("CREATE TABLE workflow_status (workflow_uuid TEXT, status TEXT)")
    flows.executemany(
        "INSERT INTO workflow_status VALUES (?, ?)",
        [("a", "SUCCESS"), ("b", "ENQUEUED"), ("c", "ERROR")],
    )
    flows.commit()
    monkeypatch.setenv("NEXFLOW_HOME", str(home))
    argv = ["migrate", "sqlite-to-postgres", "--to", pg_url]
    assert await _cli(argv) == 2
    assert "1 flow run(s) are in flight" in capsys.readouterr().err
    with psycopg.connect(pg_url) as conn:  # nothing was written
        assert conn.execute("SELECT to_regclass('messages')").fetchone() == (None,)

    flows.execute("UPDATE workflow_status SET status='SUCCESS' WHERE workflow_uuid='b'")
    flows.commit()
    flows.close()
    assert await _cli(argv) == 0
    assert "the history of 3 finished run(s) stays in" in capsys.readouterr().out


async def gateway_reads_it_back(pg_url: str) -> str:
    """The storage on Postgres reads the moved history, and new rows get ids after the
    copied ones (the identities were reset); returns Bob's session id."""
    moved = SQLStorage(PostgresEngine(pg_url))
    await moved.open()
    try:
        found = await moved.find_user("telegram", "4242")
        assert found is not None
        session = await moved.chat_session(found[0], "telegram", "4242")
        history = await moved.history(session.id, 100)
        assert [m.content for m in history][:2] == ["вопрос 0 ✓", ""]
        assert history[1].tool_calls is not None
        event = InboundEvent(
            channel="telegram",
            chat_id="4242",
            sender_id="4242",
            message="after the move",
            user_id=found[0],
            session_id=session.id,
            external_id="4242-new",
        )
        inbox_id, duplicate = await moved.accept(event)
        assert not duplicate and inbox_id == 7
        out = await moved.complete(
            inbox_id,
            [NewMessage("user", "after the move")],
            TextOut(channel="telegram", chat_id="4242", session_id=session.id, text="ok"),
        )
        assert out == 7
        assert (await moved.history(session.id, 1))[0].id == 25
        return session.id
    finally:
        await moved.close()


def memory_index_finds_the_page(pg_url: str, session_id: str) -> None:
    """The Postgres memory index finds the moved page by its words and by its vector."""
    index = PgMemoryIndex(pg_url)
    try:
        pages = index.pages.of_session(session_id)
        assert [(p.state, p.facts) for p in pages] == [("out", ("Bob likes lighthouses",))]
        found = index.pages.search(
            session_id, keyword_terms("lighthouse schedule"), None, None, 0.5, 3
        )
        assert found == [pages[0].id]
        found = index.pages.search(session_id, None, [0.25, -0.5, 1.0], "fake-embed", 0.9, 3)
        assert found == [pages[0].id]
        later = NewPage(pages[0].user_id, session_id, 9, 9, 1, 5, "y", 0.0, 0.0)
        assert index.pages.begin(later).id == 3  # ids go on after the copied ones
    finally:
        index.close()


async def _cli(argv: list[str]) -> int:
    """``nexflow …`` in a thread: the command runs its own event loop."""
    import asyncio

    return await asyncio.to_thread(cli.main, argv)


def test_checksum_values_compare_alike_across_engines() -> None:
    from decimal import Decimal

    from nexflow.storage.transfer import _normal

    assert _normal(5) == _normal(5.0) == _normal(Decimal(5)) != _normal("5")
    assert _normal(True) == _normal(1)
    assert _normal(0.1) == _normal(Decimal("0.1")) != _normal(0.1000001)
    assert _normal(b"\x00pickle") == _normal(memoryview(b"\x00pickle"))
    assert _normal(None) != _normal("") != _normal(b"")
