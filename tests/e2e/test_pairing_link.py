"""Pairing, linking and languages through the whole gateway: the real aiogram client
against the fake Bot API, the web API, the fake LLM behind the orchestrator."""

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from nexflow.pairing_cli import main_pair
from nexflow.storage import SQLStorage
from nexflow.testing.channels import running_telegram
from nexflow.testing.fake_telegram import FakeTelegram
from nexflow.testing.harness import GatewayHarness

STRANGER = 999
ME_ON_TELEGRAM = 555


@pytest.fixture
async def telegram_gateway(tmp_path: Path) -> AsyncIterator[tuple[GatewayHarness, FakeTelegram]]:
    async with running_telegram(tmp_path) as running:
        yield running


def store(gw: GatewayHarness) -> SQLStorage:
    assert gw.app is not None
    return gw.app.storage


def texts(fake: FakeTelegram, chat_id: int) -> list[str]:
    return [s.text for s in fake.sent if s.chat_id == chat_id]


async def test_pairing_approved_over_http(
    telegram_gateway: tuple[GatewayHarness, FakeTelegram],
) -> None:
    gw, fake = telegram_gateway
    fake.message(STRANGER, "hello?")
    (told,) = await fake.wait_sent(1, within=10)
    fake.message(STRANGER, "anyone?")  # no second code, no reply
    fake.message(STRANGER, "hello??")
    listed = (await gw.http.get("/api/v1/pairing")).json()
    await asyncio.sleep(1.0)  # time for the repeats to be polled, refused, (not) answered
    assert len(fake.sent) == 1 and gw.llm.requests == []
    (request,) = listed
    assert request["code"] in told.text and request["sender_id"] == str(STRANGER)

    missing = await gw.http.post("/api/v1/pairing/telegram/NOPE42/approve")
    assert missing.status_code == 404
    resp = await gw.http.post(f"/api/v1/pairing/telegram/{request['code']}/approve")
    assert resp.status_code == 200 and resp.json()["status"] == "approved"
    await fake.wait_sent(2, within=10)
    assert "approved" in texts(fake, STRANGER)[-1]
    assert (await gw.http.get("/api/v1/pairing")).json() == []

    fake.message(STRANGER, "now?")
    await fake.wait_sent(3, within=10)
    assert gw.llm.requests[-1]["messages"][-1]["content"] == "now?"
    audit = await store(gw).audit_tail(5, "pairing")
    assert audit[0]["name"] == "approved"


async def test_pairing_denied_with_the_cli(
    telegram_gateway: tuple[GatewayHarness, FakeTelegram],
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    gw, fake = telegram_gateway
    fake.message(STRANGER, "hello?")
    await fake.wait_sent(1, within=10)
    (request,) = await store(gw).pairing_requests()
    monkeypatch.setenv("NEXFLOW_HOME", str(gw.home))
    monkeypatch.setenv("NEXFLOW_CONFIG", str(gw.home.parent / "config.yml"))
    assert await asyncio.to_thread(main_pair, ["list"]) == 0
    assert request.code in capsys.readouterr().out
    assert await asyncio.to_thread(main_pair, ["deny", "telegram", request.code]) == 0
    assert "denied" in capsys.readouterr().out
    assert await asyncio.to_thread(main_pair, ["approve", "telegram", request.code]) == 1
    assert await store(gw).pairing_requests() == []
    assert await store(gw).find_user("telegram", str(STRANGER)) is None


async def test_link_web_and_telegram_then_russian(
    telegram_gateway: tuple[GatewayHarness, FakeTelegram],
) -> None:
    gw, fake = telegram_gateway
    reply = (await gw.chat("/link"))["reply"]
    code = reply.split("code: ", 1)[1].split()[0]
    fake.message(ME_ON_TELEGRAM, f"/link {code}")
    (linked,) = await fake.wait_sent(1, within=10)
    assert linked.text.startswith("Linked")
    storage = store(gw)
    web_user = await storage.find_user("web", "owner")
    assert web_user is not None
    assert await storage.find_user("telegram", str(ME_ON_TELEGRAM)) == web_user

    fake.message(ME_ON_TELEGRAM, "remember me")
    await fake.wait_sent(2, within=10)
    assert gw.llm.requests[-1]["messages"][-1]["content"] == "remember me"
    sessions = await storage.list_sessions(web_user[0], 10)
    assert {s.channel for s in sessions} == {"web", "telegram"}

    fake.message(ME_ON_TELEGRAM, "/lang ru")
    fake.message(ME_ON_TELEGRAM, "/help")
    await fake.wait_sent(4, within=10)
    assert texts(fake, ME_ON_TELEGRAM)[-2:] == [
        "Язык: русский.",
        texts(fake, ME_ON_TELEGRAM)[-1],
    ]
    assert texts(fake, ME_ON_TELEGRAM)[-1].startswith("Команды:")
    # the web is the same user: its commands answer in Russian too
    assert (await gw.chat("/new"))["reply"] == "Начат новый разговор."
