"""ReminderService starts in the background: ``start()`` returns before the scheduler runs,
operations wait for it, a failed start-up refuses them with a clear message (the log has
the traceback), and ``stop()`` right after ``start()`` shuts down cleanly."""

from __future__ import annotations

import asyncio
import logging
import sqlite3
from datetime import UTC, timedelta
from pathlib import Path

import pytest

from nexflow.storage.engine import SQLiteConn
from nexflow.storage.migrations import migrate
from nexflow.tasks import ReminderService, ReminderTarget, ReminderUnavailable, reminder_tools
from nexflow.tools.base import ToolContext, ToolError

TARGET = ReminderTarget("ana", "web", "chat-ana", "s-ana")


async def nowhere(channel: str, chat_id: str, session_id: str, text: str) -> None:
    raise AssertionError(f"nothing should be delivered: {text}")


@pytest.fixture
def db(tmp_path: Path) -> Path:
    path = tmp_path / "nexflow.db"
    conn = sqlite3.connect(path, isolation_level=None)
    migrate(SQLiteConn(conn))
    conn.close()
    return path


async def test_start_returns_before_the_scheduler_and_operations_wait(db: Path) -> None:
    service = ReminderService(db, nowhere, timezone=UTC)
    await service.start()
    assert not service.running  # the start-up task has not run yet
    try:
        added = await service.add_in(TARGET, "stretch", timedelta(hours=1))  # waits for it
        assert service.running
        assert [r.id for r in await service.list_for("ana")] == [added.id]
    finally:
        await service.stop()
    assert not service.running


async def test_a_failed_start_refuses_operations_and_logs_why(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    not_a_db = tmp_path / "nexflow.db"
    not_a_db.mkdir()  # SQLite cannot open a directory
    service = ReminderService(not_a_db, nowhere, timezone=UTC)
    with caplog.at_level(logging.ERROR, logger="nexflow.tasks.service"):
        await service.start()
        with pytest.raises(ReminderUnavailable, match="could not start"):
            await service.ready()
    assert [r.message for r in caplog.records] == ["reminders_start_failed"]
    assert caplog.records[0].exc_info is not None
    add = reminder_tools(service)[0]
    ctx = ToolContext(user_id="ana", session_id="s-ana", channel="web", chat_id="chat-ana")
    with pytest.raises(ToolError, match="reminders are unavailable"):
        await add.run({"text": "x", "in_minutes": 5}, ctx)
    await service.stop()


async def test_stop_right_after_start_waits_for_it_and_shuts_down(db: Path) -> None:
    service = ReminderService(db, nowhere, timezone=UTC)
    await service.start()
    await asyncio.wait_for(service.stop(), 10)
    assert not service.running
    with pytest.raises(RuntimeError, match="not started"):
        await service.ready()
    await service.start()  # and it starts again
    await service.ready()
    assert service.running
    await service.stop()
