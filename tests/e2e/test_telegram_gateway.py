"""Telegram through the whole gateway: the real aiogram client against the fake Bot API,
the fake LLM behind the orchestrator, confirmations as inline buttons."""

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from nexflow.testing.channels import running_telegram
from nexflow.testing.fake_llm import Reply
from nexflow.testing.fake_telegram import FakeTelegram
from nexflow.testing.harness import GatewayHarness

OWNER = 4242
OWNER_CONFIG = {
    "security": {"owner": {"telegram": [str(OWNER)]}},
    "outbox": {"initial_backoff_s": 0.1, "max_backoff_s": 0.5},
}


def texts(fake: FakeTelegram) -> list[str]:
    """What each sent message says now (a streamed draft is edited into the final text)."""
    return [s.text for s in fake.sent]


@pytest.fixture
async def telegram_gateway(tmp_path: Path) -> AsyncIterator[tuple[GatewayHarness, FakeTelegram]]:
    async with running_telegram(tmp_path, config=OWNER_CONFIG) as running:
        yield running


async def test_message_and_reply(telegram_gateway: tuple[GatewayHarness, FakeTelegram]) -> None:
    gw, fake = telegram_gateway
    fake.message(OWNER, "what time is it?")
    await fake.wait_for(lambda: any("get_time returned" in t for t in texts(fake)), within=10)
    assert [s.chat_id for s in fake.sent] == [OWNER]
    assert gw.llm.requests[0]["messages"][-1]["content"] == "what time is it?"


async def test_stranger_is_not_answered_by_the_model(
    telegram_gateway: tuple[GatewayHarness, FakeTelegram],
) -> None:
    gw, fake = telegram_gateway
    fake.message(999, "hello?")
    (sent,) = await fake.wait_sent(1, within=10)
    assert sent.chat_id == 999 and "pairing code" in sent.text.lower()
    assert gw.llm.requests == []


async def test_confirmation_buttons(telegram_gateway: tuple[GatewayHarness, FakeTelegram]) -> None:
    gw, fake = telegram_gateway
    call = ("run_skill", {"name": "shell-run", "input": {"command": "echo from-telegram"}})
    gw.llm.push(Reply(tool_calls=(call,)))
    fake.message(OWNER, "run it")
    (ask,) = await fake.wait_sent(1, within=10)
    assert "echo from-telegram" in ask.text
    confirm = next(b for b in ask.buttons if "onfirm" in b["text"])
    fake.press(ask, confirm["callback_data"], user_id=OWNER)
    await fake.wait_for(
        lambda: any("from-telegram" in t for t in texts(fake)[1:] if "returned" in t), within=15
    )


async def test_reply_streams_into_one_edited_message(
    telegram_gateway: tuple[GatewayHarness, FakeTelegram],
) -> None:
    gw, fake = telegram_gateway
    text = "please write a reply long enough to arrive in several streamed pieces"
    fake.message(OWNER, text)
    await fake.wait_for(lambda: texts(fake) == [f"Echo: {text}"], within=15)
    (reply,) = fake.sent  # one message: the draft, edited into the final reply
    assert reply.edits == [f"Echo: {text}"]
    assert gw.llm.requests[-1].get("stream") is True


async def test_replies_survive_502_and_flood_control_in_order(tmp_path: Path) -> None:
    async with running_telegram(tmp_path, config=OWNER_CONFIG, stream_edits=False) as (gw, fake):
        fake.fail("sendMessage", 502, times=2)
        fake.fail("sendMessage", 429, times=1, retry_after=1)
        for word in ("one", "two", "three"):
            fake.message(OWNER, word)
        want = ["Echo: one", "Echo: two", "Echo: three"]
        await fake.wait_for(lambda: texts(fake) == want, within=20)
        assert len(gw.llm.requests) == 3
        assert gw.app is not None
        failures = (await gw.http.get("/metrics")).text
        assert 'nexflow_delivery_failures_total{channel="telegram",final="false"} 3.0' in failures
