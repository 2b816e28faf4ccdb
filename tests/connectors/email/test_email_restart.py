"""SIGKILL a real ``nexflow serve`` while it answers a mail, start it again: exactly one
reply goes out over SMTP, in the mail's thread, and the mail is one turn, even when the
mailbox hands it over a second time (the UID was not yet recorded)."""

from __future__ import annotations

import asyncio
import signal
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from email_helpers import BOT, Collect, raw, section

from nexflow.testing.fake_imap import FakeImap
from nexflow.testing.fake_llm import FakeLLMServer, Reply
from nexflow.testing.harness import free_port
from nexflow.testing.process import db_rows, gateway_env, process, serve_command, wait_healthy

pytestmark = pytest.mark.slow


class SlowFirst:
    """The model: its first answer takes long enough for the gateway to be killed."""

    def __init__(self) -> None:
        self.calls = 0

    def __call__(self, request: dict[str, Any]) -> Reply:
        self.calls += 1
        if self.calls == 1:
            return Reply(text="never delivered", delay_s=4)
        return Reply(text="The totals are 42.")


@pytest.fixture
async def llm() -> AsyncIterator[FakeLLMServer]:
    server = FakeLLMServer(brain=SlowFirst())
    await server.start()
    yield server
    await server.stop()


async def until(check: Any, what: str, within: float = 30) -> None:
    deadline = time.monotonic() + within
    while not check():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        await asyncio.sleep(0.05)


async def test_sigkill_mid_turn_then_one_reply_in_the_thread(
    tmp_path: Path, llm: FakeLLMServer, smtp: tuple[Collect, int]
) -> None:
    collected, smtp_port = smtp
    home, port = tmp_path / "home", free_port()
    url = f"http://127.0.0.1:{port}"
    db, log = home / "nexflow.db", tmp_path / "gateway.log"
    async with FakeImap(username=BOT) as imap:
        config = tmp_path / "config.yml"
        config.write_text(yaml.safe_dump({"connectors": {"email": section(imap, smtp_port)}}))
        env = gateway_env(home, llm.base_url, NEXFLOW_CONFIG=str(config))
        imap.append(
            raw(
                "alice@example.com",
                "Re: quarterly numbers",
                "What are the totals?",
                "<q2@example.com>",
                In_Reply_To="<q1@example.com>",
                References="<q0@example.com> <q1@example.com>",
            )
        )
        with process(serve_command(port), env, log) as gateway:
            await wait_healthy(url, gateway)
            await until(lambda: len(llm.requests) == 1, "the model call")
            gateway.send_signal(signal.SIGKILL)  # mid-turn: the model has not answered
            gateway.wait(10)
        assert collected.mails == []
        assert db_rows(db, "SELECT status FROM inbox") == [("running",)]
        # As if it died before recording the UID: the mailbox hands the mail over again.
        (home / "email" / f"{BOT}.uid").unlink(missing_ok=True)
        searches = imap.searches

        with process(serve_command(port), env, log) as gateway:
            await wait_healthy(url, gateway)
            await until(lambda: len(collected.mails) == 1, "the reply")
            await until(lambda: imap.searches > searches, "the mailbox read again")
            await asyncio.sleep(1.0)  # time for a second reply, if there were one
            gateway.send_signal(signal.SIGTERM)
            gateway.wait(15)

    (reply,) = collected.mails
    assert reply["To"] == "alice@example.com" and reply["From"] == BOT
    assert reply["Subject"] == "Re: quarterly numbers"
    assert reply["In-Reply-To"] == "<q2@example.com>"
    assert reply["References"].split() == [
        "<q0@example.com>",
        "<q1@example.com>",
        "<q2@example.com>",
    ]
    assert reply.get_content().strip() == "The totals are 42."
    assert collected.recipients == ["alice@example.com"]
    assert db_rows(db, "SELECT dedup_key, status FROM inbox") == [
        ("email:<q2@example.com>", "done")
    ]
    per_turn = db_rows(
        db,
        "SELECT (SELECT COUNT(*) FROM outbox o WHERE o.inbox_id = i.id),"
        " (SELECT COUNT(*) FROM messages m WHERE m.inbox_id = i.id AND m.role = 'user'),"
        " (SELECT COUNT(*) FROM messages m WHERE m.inbox_id = i.id AND m.role = 'assistant')"
        " FROM inbox i",
    )
    assert per_turn == [(1, 1, 1)]
    assert len(llm.requests) == 2  # the killed call, and the one that answered
    assert (home / "email" / f"{BOT}.uid").read_text().strip() == "1"
