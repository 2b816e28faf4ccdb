"""``mode: webhook`` through the whole gateway: the connector registers the webhook with
the fake Bot API (``setWebhook``: url + secret_token), the gateway's own HTTP server takes
Telegram's POST at the webhook path, and the reply goes out through the fake Bot API."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx

from nexflow.testing.channels import running_telegram
from nexflow.testing.fake_telegram import FakeTelegram
from nexflow.testing.harness import GatewayHarness

OWNER = 4242
SECRET = "s3cret-Token_42"
PATH = "/telegram/webhook/x7k"
CONFIG: dict[str, Any] = {
    "security": {"owner": {"telegram": [str(OWNER)]}},
    "outbox": {"initial_backoff_s": 0.1, "max_backoff_s": 0.5},
}
WEBHOOK = {
    "mode": "webhook",
    "webhook_url": f"https://bot.example.com{PATH}",
    "webhook_secret": SECRET,
}


def update(fake: FakeTelegram, text: str, update_id: int) -> dict[str, Any]:
    """A real Update as Telegram POSTs it (the fake makes the message, so it knows the
    chat the reply goes to; it is not delivered by polling: the webhook is set)."""
    return {"update_id": update_id, "message": fake.message(OWNER, text)}


async def registered(fake: FakeTelegram) -> dict[str, Any]:
    await fake.wait_for(lambda: bool(fake.webhook_url), within=10)
    return next(params for method, params in fake.calls if method == "setWebhook")


async def post(gw: GatewayHarness, body: dict[str, Any], secret: str | None) -> httpx.Response:
    """POST as Telegram does: JSON, its own secret header, no gateway token, no Origin."""
    headers = {"X-Telegram-Bot-Api-Secret-Token": secret} if secret is not None else {}
    async with httpx.AsyncClient(base_url=gw.url, timeout=10) as telegram:
        return await telegram.post(PATH, json=body, headers=headers)


async def test_an_update_posted_to_the_webhook_is_answered(tmp_path: Path) -> None:
    async with running_telegram(tmp_path, config=CONFIG, **WEBHOOK) as (gw, fake):
        params = await registered(fake)
        assert params["url"] == WEBHOOK["webhook_url"]
        assert params["secret_token"] == SECRET
        resp = await post(gw, update(fake, "hello via webhook", 901), SECRET)
        assert resp.status_code == 200
        (sent,) = await fake.wait_sent(1, within=10)
    assert (sent.chat_id, sent.text) == (OWNER, "Echo: hello via webhook")
    assert gw.llm.requests[0]["messages"][-1]["content"] == "hello via webhook"


async def test_a_wrong_or_missing_secret_is_refused_and_nothing_is_processed(
    tmp_path: Path,
) -> None:
    async with running_telegram(tmp_path, config=CONFIG, **WEBHOOK) as (gw, fake):
        await registered(fake)
        wrong = await post(gw, update(fake, "forged", 902), "not-the-secret")
        missing = await post(gw, update(fake, "forged too", 903), None)
        not_post = await _get(gw)
        assert (wrong.status_code, missing.status_code, not_post) == (401, 401, 405)
        # A real one afterwards is answered, and it is the only thing that was.
        assert (await post(gw, update(fake, "genuine", 904), SECRET)).status_code == 200
        (sent,) = await fake.wait_sent(1, within=10)
    assert sent.text == "Echo: genuine"
    assert [r["messages"][-1]["content"] for r in gw.llm.requests] == ["genuine"]


async def test_the_webhook_needs_no_gateway_token(tmp_path: Path) -> None:
    """With a gateway token set (as on any public deployment) Telegram still gets through:
    it has no bearer token, only its secret header; the API itself stays closed."""
    config = {**CONFIG, "web": {"token": "gateway-token-0123456789"}}
    async with running_telegram(tmp_path, config=config, **WEBHOOK) as (gw, fake):
        await registered(fake)
        assert (await post(gw, update(fake, "forged", 905), "nope")).status_code == 401
        assert (await post(gw, update(fake, "through", 906), SECRET)).status_code == 200
        (sent,) = await fake.wait_sent(1, within=10)
        async with httpx.AsyncClient(base_url=gw.url) as anonymous:
            assert (await anonymous.get("/api/v1/sessions")).status_code == 401
    assert sent.text == "Echo: through"


async def _get(gw: GatewayHarness) -> int:
    async with httpx.AsyncClient(base_url=gw.url) as client:
        return (await client.get(PATH)).status_code
