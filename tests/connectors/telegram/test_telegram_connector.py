"""The real aiogram client against the fake Bot API: messages in, replies out."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import httpx
import pytest

from connectors.telegram.config import TelegramConfig
from connectors.telegram.connector import TelegramConnector
from connectors.telegram.manifest import MANIFEST
from nexflow.bus.events import (
    ButtonSpec,
    ConfirmationOut,
    FileOut,
    PanelSnapshotOut,
    PatchReviewOut,
    TextOut,
)
from nexflow.config.errors import ConfigError
from nexflow.testing.fake_telegram import FakeTelegram, parse_html

StartFn = Callable[..., Awaitable[Any]]  # the ``telegram`` fixture (see conftest.py)

GROUP = -1001234567890


def text(chat_id: int, body: str) -> TextOut:
    return TextOut(channel="telegram", chat_id=str(chat_id), text=body)


async def test_private_message_becomes_an_event(fake: FakeTelegram, telegram: StartFn) -> None:
    run = await telegram()
    fake.message(42, "hello <there>", language_code="ru")
    event = await run.event()
    assert (event.channel, event.chat_id, event.sender_id) == ("telegram", "42", "42")
    assert event.message == "hello <there>"
    assert event.external_id == "42:1"
    assert event.metadata["language"] == "ru"
    assert event.metadata["chat_type"] == "private"


async def test_reply_is_sent_as_escaped_html(fake: FakeTelegram, telegram: StartFn) -> None:
    run = await telegram()
    fake.message(42, "hi")
    await run.event()
    await run.connector.send(text(42, "Use **`a < b && c`** or <script>x</script>"))
    [sent] = await fake.wait_sent(1)
    assert sent.parse_mode == "HTML"
    assert (
        sent.text
        == "Use <b><code>a &lt; b &amp;&amp; c</code></b> or &lt;script&gt;x&lt;/script&gt;"
    )


async def test_long_reply_is_split_in_order(fake: FakeTelegram, telegram: StartFn) -> None:
    run = await telegram()
    fake.message(42, "hi")
    await run.event()
    body = "\n".join(f"{i:04d} " + "z" * 90 for i in range(150))
    await run.connector.send(text(42, body))
    sent = fake.sent
    assert len(sent) == 4
    assert "\n".join(parse_html(s.text) for s in sent) == body
    assert all(len(parse_html(s.text)) <= 4096 for s in sent)


async def test_confirmation_buttons_come_back_as_control_commands(
    fake: FakeTelegram, telegram: StartFn
) -> None:
    run = await telegram()
    fake.message(42, "deploy")
    await run.event()
    ask = ConfirmationOut(
        channel="telegram",
        chat_id="42",
        confirmation_id="abc123",
        title="Run shell command",
        detail="rm -rf build/ && make <all>",
        expires_at=time.time() + 300,
    )
    await run.connector.send(ask)
    [sent] = await fake.wait_sent(1)
    assert "rm -rf build/ &amp;&amp; make &lt;all&gt;" in sent.text
    assert [b["callback_data"] for b in sent.buttons] == ["c:abc123", "x:abc123"]

    fake.press(sent, "c:abc123")
    event = await run.event()
    assert event.message == "/confirm abc123"
    assert (event.chat_id, event.sender_id, event.metadata["callback"]) == ("42", "42", True)
    await fake.wait_for(lambda: len(fake.answers) == 1)
    await fake.wait_for(lambda: not fake.sent[0].buttons)  # private chat: keyboard removed

    fake.press(sent, "x:abc123")
    assert (await run.event()).message == "/cancel abc123"


async def test_panel_buttons_become_press_commands(fake: FakeTelegram, telegram: StartFn) -> None:
    run = await telegram()
    fake.message(42, "panel")
    await run.event()
    long_action = "refresh:" + "x" * 80
    panel = PanelSnapshotOut(
        channel="telegram",
        chat_id="42",
        panel_id="p1",
        title="Builds",
        text="3 *green*",
        buttons=(
            ButtonSpec(label="Refresh", action=long_action),
            ButtonSpec(label="Go", action="go"),
        ),
    )
    await run.connector.send(panel)
    [sent] = await fake.wait_sent(1)
    assert sent.text == "<b>Builds</b>\n3 <i>green</i>"
    refresh, go = sent.buttons
    assert go["callback_data"] == "p:go"
    assert len(refresh["callback_data"].encode()) <= 64
    fake.press(sent, refresh["callback_data"])
    assert (await run.event()).message == f"/press {long_action}"
    fake.press(sent, "t:unknown")
    await fake.wait_for(lambda: "This button has expired." in [a[1] for a in fake.answers])
    await run.nothing()


async def test_patch_review_is_a_diff_block_with_accept_and_reject(
    fake: FakeTelegram, telegram: StartFn
) -> None:
    run = await telegram()
    fake.message(42, "hi")
    await run.event()
    diff = "--- a/x\n+++ b/x\n-<old>\n+<new>"
    await run.connector.send(
        PatchReviewOut(channel="telegram", chat_id="42", patch_id="7", title="Fix", diff=diff)
    )
    [sent] = await fake.wait_sent(1)
    assert parse_html(sent.text) == f"Patch 7: Fix\n{diff}"
    assert [b["callback_data"] for b in sent.buttons] == ["a:7", "r:7"]
    assert "patch_review" in MANIFEST.renders


async def test_groups_answer_only_when_addressed(fake: FakeTelegram, telegram: StartFn) -> None:
    run = await telegram()
    fake.message(7, "just chatting", chat_id=GROUP)
    fake.message(7, "@nexflow_bot what time is it?", chat_id=GROUP)
    event = await run.event()
    assert (event.chat_id, event.message) == (str(GROUP), "what time is it?")
    await run.connector.send(
        TextOut(channel="telegram", chat_id=str(GROUP), text="noon", reply_to=event.id)
    )
    [answer] = await fake.wait_sent(1)
    assert answer.reply_to_message_id == event.metadata["message_id"]
    fake.message(8, "and tomorrow?", chat_id=GROUP, reply_to=answer.message_id)
    assert (await run.event()).message == "and tomorrow?"
    fake.message(8, "/status@other_bot", chat_id=GROUP)
    fake.message(8, "/status@nexflow_bot", chat_id=GROUP)
    assert (await run.event()).message == "/status@nexflow_bot"
    await run.nothing()


async def test_group_mode_all_takes_every_message(fake: FakeTelegram, telegram: StartFn) -> None:
    run = await telegram(group_mode="all")
    fake.message(7, "just chatting", chat_id=GROUP)
    assert (await run.event()).message == "just chatting"


async def test_unknown_users_are_dropped_and_told_once(
    fake: FakeTelegram, telegram: StartFn
) -> None:
    run = await telegram(allowed_users=[42])
    fake.message(99, "let me in")
    fake.message(99, "please")
    fake.message(42, "it's me")
    assert (await run.event()).sender_id == "42"
    await run.nothing()
    notices = [s for s in fake.sent if s.chat_id == 99]
    assert len(notices) == 1
    assert "99" in notices[0].text


async def test_unknown_users_can_be_passed_to_pairing(
    fake: FakeTelegram, telegram: StartFn
) -> None:
    run = await telegram(allowed_users=[42], unknown_users="pass")
    fake.message(99, "let me in")
    stranger = await run.event()
    assert stranger.metadata["allowlisted"] is False
    fake.message(42, "me again")
    assert (await run.event()).metadata["allowlisted"] is True
    assert not fake.sent


async def test_allowed_chats_open_a_group_to_its_members(
    fake: FakeTelegram, telegram: StartFn
) -> None:
    run = await telegram(allowed_users=[42], allowed_chats=[GROUP], group_mode="all")
    fake.message(99, "from another group", chat_id=-100999)
    fake.message(99, "from the team", chat_id=GROUP)
    event = await run.event()
    assert (event.message, event.metadata["allowlisted"]) == ("from the team", True)
    await run.nothing()
    assert not fake.sent


async def test_flood_control_becomes_retry_after(fake: FakeTelegram, telegram: StartFn) -> None:
    run = await telegram()
    fake.message(42, "hi")
    await run.event()
    fake.fail("sendMessage", 429, retry_after=7)
    with pytest.raises(Exception) as caught:
        await run.connector.send(text(42, "hello"))
    err = caught.value
    assert getattr(err, "retryable", None) is True
    assert getattr(err, "retry_after_s", None) == 7.0


async def test_blocked_bot_is_a_final_failure(fake: FakeTelegram, telegram: StartFn) -> None:
    from nexflow.gateway.connector import DeliveryError

    run = await telegram()
    fake.message(42, "hi")
    await run.event()
    fake.block(42)
    with pytest.raises(DeliveryError) as blocked:
        await run.connector.send(text(42, "hello"))
    assert not blocked.value.retryable
    assert "blocked" in blocked.value.reason
    with pytest.raises(DeliveryError) as missing:
        await run.connector.send(text(555, "nobody"))
    assert not missing.value.retryable
    fake.fail("sendMessage", 502)
    with pytest.raises(DeliveryError) as bad_gateway:
        await run.connector.send(text(7, "x"))
    assert bad_gateway.value.retryable


async def test_a_retried_split_reply_does_not_repeat_chunks(
    fake: FakeTelegram, telegram: StartFn
) -> None:
    from nexflow.gateway.connector import DeliveryError

    run = await telegram()
    fake.message(42, "hi")
    await run.event()
    body = "\n".join(f"{i:04d} " + "z" * 90 for i in range(100))  # three messages
    fake.fail("sendMessage", 502, after=1)  # the first goes out, the second meets a 502
    with pytest.raises(DeliveryError):
        await run.connector.send(text(42, body))
    assert len(fake.sent) == 1
    await run.connector.send(text(42, body))  # the outbox's retry
    assert len(fake.sent) == 3
    assert "\n".join(parse_html(s.text) for s in fake.sent) == body


async def test_polling_recovers_after_the_network_comes_back(
    fake: FakeTelegram, telegram: StartFn
) -> None:
    run = await telegram()
    fake.message(42, "before")
    await run.event()
    fake.offline = True
    await fake.wait_for(lambda: fake.dropped >= 3, within=5)
    fake.offline = False
    fake.message(42, "after")
    assert (await run.event(within=5)).message == "after"
    assert run.connector.health.restarts >= 2


async def test_stalled_get_updates_is_restarted_by_the_watchdog(
    fake: FakeTelegram, telegram: StartFn
) -> None:
    run = await telegram()
    fake.message(42, "before")
    await run.event()
    fake.stall_polls(1)
    await fake.wait_for(lambda: fake.stalls_served == 1, within=3)
    fake.message(42, "during the stall")
    event = await run.event(within=4)
    assert event.message == "during the stall"
    assert run.connector.health.stalls == 1


async def test_document_and_photo_are_saved_and_attached(
    fake: FakeTelegram, telegram: StartFn, tmp_path: Path
) -> None:
    run = await telegram()
    fake.document(42, "report 1.csv", b"a,b\n1,2\n", mime_type="text/csv", caption="see this")
    event = await run.event()
    assert event.message == "see this"
    [doc] = event.attachments
    assert (doc.name, doc.mime_type, doc.size) == ("report 1.csv", "text/csv", 8)
    assert await asyncio.to_thread(Path(doc.path).read_bytes) == b"a,b\n1,2\n"
    assert Path(doc.path).is_relative_to(tmp_path / "files")
    fake.photo(42, b"\xff\xd8jpeg")
    [photo] = (await run.event()).attachments
    content = await asyncio.to_thread(Path(photo.path).read_bytes)
    assert (photo.mime_type, content) == ("image/jpeg", b"\xff\xd8jpeg")


async def test_files_out_are_sent_as_documents(
    fake: FakeTelegram, telegram: StartFn, tmp_path: Path
) -> None:
    from nexflow.gateway.connector import DeliveryError

    run = await telegram()
    fake.message(42, "hi")
    await run.event()
    path = tmp_path / "out.txt"
    path.write_bytes(b"result")
    await run.connector.send(
        FileOut(channel="telegram", chat_id="42", path=str(path), caption="*the* result")
    )
    [sent] = await fake.wait_sent(1)
    assert sent.document == ("out.txt", b"result")
    assert sent.text == "<i>the</i> result"
    with pytest.raises(DeliveryError) as missing:
        await run.connector.send(
            FileOut(channel="telegram", chat_id="42", path=str(tmp_path / "no"))
        )
    assert not missing.value.retryable


async def test_typing_is_shown_until_the_reply(fake: FakeTelegram, telegram: StartFn) -> None:
    run = await telegram(typing=True)
    fake.message(42, "think hard")
    await run.event()
    await fake.wait_for(lambda: (42, "typing") in fake.actions)
    await run.connector.send(text(42, "done"))
    assert "42" not in run.connector._typing


async def test_streamed_draft_is_edited_into_the_final_reply(
    fake: FakeTelegram, telegram: StartFn
) -> None:
    run = await telegram(stream_edit_interval_s=0)
    fake.message(42, "hi")
    await run.event()
    await run.connector.draft("42", "Thinking")
    await run.connector.draft("42", "Thinking about **it**")
    await run.connector.send(text(42, "Final **answer**"))
    [sent] = fake.sent
    assert sent.text == "Final <b>answer</b>"
    assert sent.edits == ["Thinking about <b>it</b>", "Final <b>answer</b>"]


async def test_webhook_mode_registers_and_accepts_updates(
    fake: FakeTelegram, telegram: StartFn
) -> None:
    run = await telegram(
        mode="webhook", webhook_url="https://bot.example/telegram/tg", webhook_secret="s3cret"
    )
    await fake.wait_for(lambda: fake.webhook_url == "https://bot.example/telegram/tg")
    update = {
        "update_id": 1,
        "message": {
            "message_id": 5,
            "date": 0,
            "chat": {"id": 42, "type": "private"},
            "from": {"id": 42, "is_bot": False, "first_name": "A"},
            "text": "via webhook",
        },
    }
    transport = httpx.ASGITransport(app=run.connector.webhook_app())
    async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
        refused = await client.post(
            "/telegram/tg", json=update, headers={"X-Telegram-Bot-Api-Secret-Token": "no"}
        )
        ok = await client.post(
            "/telegram/tg", json=update, headers={"X-Telegram-Bot-Api-Secret-Token": "s3cret"}
        )
    assert (refused.status_code, ok.status_code) == (401, 200)
    assert (await run.event()).message == "via webhook"


def test_config_errors_name_the_key(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as bad:
        TelegramConfig.from_section({"bot_token": "x", "group_mode": "loud"})
    paths = {p.path for p in bad.value.problems}
    assert paths == {"connectors.telegram.group_mode", "connectors.telegram.bot_token"}
    with pytest.raises(ConfigError, match="webhook_url and webhook_secret"):
        TelegramConfig.from_section({"bot_token": "1:x", "mode": "webhook"})
    config = TelegramConfig.from_section({"bot_token": "1:x", "allowed_users": ["123"]})
    assert config.allowed_users == [123]
    assert TelegramConnector(config, tmp_path).manifest.name == "telegram"


async def test_an_update_is_confirmed_only_after_its_event_was_consumed(
    fake: FakeTelegram, tmp_path: Path
) -> None:
    config = TelegramConfig(
        bot_token=fake.token, api_server=fake.base_url, poll_timeout_s=1, typing=False
    )
    first = TelegramConnector(config, tmp_path)
    await first.start()
    fake.message(42, "do not lose me")
    events = first.events()
    taken = await asyncio.wait_for(anext(events), 3)
    await first.stop()  # crashed before the gateway came back for the next event
    await events.aclose()

    second = TelegramConnector(config, tmp_path)
    await second.start()
    redelivered = second.events()
    again = await asyncio.wait_for(anext(redelivered), 3)
    await second.stop()
    await redelivered.aclose()
    assert again.external_id == taken.external_id == "42:1"  # the inbox drops the duplicate
