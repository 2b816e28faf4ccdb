"""`nexflow inbox dead | retry`: dead letters listed from the database, and brought back
(in the database when no gateway answers; the running gateway's API otherwise)."""

import asyncio
import json
from pathlib import Path

import pytest

from nexflow.bus.events import InboundEvent
from nexflow.inbox_cli import main_inbox
from nexflow.storage import SQLStorage
from nexflow.testing.harness import free_port


async def bury(home: Path) -> int:
    storage = SQLStorage(home / "nexflow.db")
    await storage.open()
    try:
        user = await storage.create_user("ann", "user", "telegram", "1")
        session = await storage.chat_session(user, "telegram", "1")
        event = InboundEvent("telegram", "1", "1", "poison", user_id=user, session_id=session.id)
        inbox_id, _ = await storage.accept(event)
        await storage.begin_turn(inbox_id, 10, 1)
        assert await storage.fail_turn(inbox_id, "RuntimeError: boom", 1) == "dead"
        return inbox_id
    finally:
        await storage.close()


def test_dead_letters_listed_and_retried_offline(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    home = tmp_path / "home"
    monkeypatch.setenv("NEXFLOW_HOME", str(home))
    monkeypatch.setenv("NEXFLOW_WEB__PORT", str(free_port()))  # nothing listens there
    monkeypatch.chdir(tmp_path)
    inbox_id = asyncio.run(bury(home))
    assert main_inbox(["dead", "--json"]) == 0
    (letter,) = json.loads(capsys.readouterr().out)
    assert (letter["id"], letter["message"], letter["error"]) == (
        inbox_id,
        "poison",
        "RuntimeError: boom",
    )
    assert main_inbox(["retry", str(inbox_id)]) == 0
    assert "when the gateway starts" in capsys.readouterr().out
    assert main_inbox(["dead"]) == 0
    assert "no dead letters" in capsys.readouterr().out
    assert main_inbox(["retry", str(inbox_id)]) == 1
    assert "is not a dead letter" in capsys.readouterr().out
