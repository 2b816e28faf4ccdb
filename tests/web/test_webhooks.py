"""Inbound signed webhooks through the whole gateway: a signed delivery becomes a message
in the configured Telegram chat (fake Bot API); replays, bad signatures, unknown hooks,
oversized bodies and filtered events are refused without sending anything."""

import asyncio
import hashlib
import hmac
import json
import sqlite3
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager, closing
from pathlib import Path
from typing import Any

import httpx
import pytest

from nexflow.testing.channels import running_telegram
from nexflow.testing.fake_telegram import FakeTelegram, Sent
from nexflow.testing.harness import GatewayHarness

CHAT = 4242
GITHUB_SECRET = "github-secret-0123456789"
GITLAB_SECRET = "gitlab-token-0123456789"
HMAC_SECRET = "hmac-secret-0123456789ab"
TEMPLATE = (
    "CI {workflow_run.name}: {workflow_run.conclusion} on {workflow_run.head_branch} "
    "— {workflow_run.html_url}"
)
CONFIG: dict[str, Any] = {
    "security": {"owner": {"telegram": [str(CHAT)]}},
    "outbox": {"initial_backoff_s": 0.1, "max_backoff_s": 0.5},
    "webhooks": {
        "inbound": {
            "ci": {
                "secret": GITHUB_SECRET,
                "scheme": "github",
                "to": {"channel": "telegram", "chat_id": str(CHAT)},
                "template": TEMPLATE,
                "events": ["workflow_run"],
                "max_bytes": 4096,
            },
            "lab": {
                "secret": GITLAB_SECRET,
                "scheme": "gitlab",
                "to": {"channel": "telegram", "chat_id": str(CHAT)},
                "template": "GitLab {object_kind}: {object_attributes.status}",
            },
            "mon": {
                "secret": HMAC_SECRET,
                "scheme": "hmac",
                "to": {"channel": "telegram", "chat_id": str(CHAT)},
                "template": "Alert {alert.name} is {alert.state}",
                "replay_window_s": 60,
            },
        }
    },
}
RUN = {
    "action": "completed",
    "workflow_run": {
        "name": "tests",
        "conclusion": "failure",
        "head_branch": "main",
        "html_url": "https://github.com/acme/app/actions/runs/1",
    },
}
EXPECTED = "CI tests: failure on main — https://github.com/acme/app/actions/runs/1"


def github_headers(
    body: bytes, delivery: str, event: str = "workflow_run", secret: str = GITHUB_SECRET
) -> dict[str, str]:
    digest = hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()
    return {
        "Content-Type": "application/json",
        "X-GitHub-Event": event,
        "X-GitHub-Delivery": delivery,
        "X-Hub-Signature-256": f"sha256={digest}",
    }


def hmac_headers(body: bytes, ts: int) -> dict[str, str]:
    digest = hmac.new(HMAC_SECRET.encode(), f"{ts}.".encode() + body, hashlib.sha256)
    return {"X-Nexflow-Timestamp": str(ts), "X-Nexflow-Signature": f"sha256={digest.hexdigest()}"}


async def post(
    gw: GatewayHarness, name: str, body: bytes, headers: dict[str, str]
) -> httpx.Response:
    # No gateway token: the hook's signature is the only credential.
    async with httpx.AsyncClient(base_url=gw.url) as client:
        return await client.post(f"/api/v1/hooks/{name}", content=body, headers=headers)


class Chat:
    """The hook's Telegram chat; Telegram lets a bot write only where the person wrote
    first, so the owner says /start before any hook is delivered."""

    def __init__(self, fake: FakeTelegram) -> None:
        self.fake = fake
        self.base = 0

    async def open(self) -> None:
        self.fake.message(CHAT, "/start")
        self.base = len(await self.fake.wait_sent(1, within=10))

    @property
    def new(self) -> list[Sent]:
        return self.fake.sent[self.base :]

    async def wait(self, count: int = 1) -> list[Sent]:
        await self.fake.wait_sent(self.base + count, within=10)
        return self.new

    async def quiet(self, count: int = 0) -> bool:
        await asyncio.sleep(0.6)  # longer than an outbox pass
        return len(self.new) == count


@asynccontextmanager
async def hooked_chat(
    tmp_path: Path, config: dict[str, Any]
) -> AsyncIterator[tuple[GatewayHarness, Chat]]:
    """A gateway with these hooks and the owner's Telegram chat, opened."""
    async with running_telegram(tmp_path, config=config) as (gw, fake):
        chat = Chat(fake)
        await chat.open()
        yield gw, chat


@pytest.fixture
async def hooked(tmp_path: Path) -> AsyncIterator[tuple[GatewayHarness, Chat]]:
    async with hooked_chat(tmp_path, CONFIG) as running:
        yield running


async def test_github_failure_reaches_the_chat_once(
    hooked: tuple[GatewayHarness, Chat],
) -> None:
    gw, chat = hooked
    body = json.dumps(RUN).encode()
    response = await post(gw, "ci", body, github_headers(body, "d-1"))
    assert response.status_code == 202 and response.json() == {"status": "accepted"}
    (sent,) = await chat.wait()
    assert sent.chat_id == CHAT and sent.text == EXPECTED
    # GitHub's "Redeliver": same id, same body.
    again = await post(gw, "ci", body, github_headers(body, "d-1"))
    assert again.status_code == 200 and again.json() == {"status": "duplicate"}
    # The delivery header is not signed: a captured body under a new id is a replay too.
    forged = await post(gw, "ci", body, github_headers(body, "d-2"))
    assert forged.json() == {"status": "duplicate"}
    assert await chat.quiet(1)
    assert gw.app is not None
    (row, *_) = await gw.app.storage.audit_tail(5, "webhook")
    assert (row["name"], row["outcome"]) == ("ci", "accepted")


async def test_refusals_send_nothing(hooked: tuple[GatewayHarness, Chat]) -> None:
    gw, chat = hooked
    body = json.dumps(RUN).encode()
    wrong = await post(gw, "ci", body, github_headers(body, "d-3", secret="not-the-secret-at-all"))
    assert wrong.status_code == 401 and wrong.json()["error"]["code"] == "bad_signature"
    unsigned = {k: v for k, v in github_headers(body, "d-3").items() if "Signature" not in k}
    assert (await post(gw, "ci", body, unsigned)).status_code == 401
    tampered = await post(
        gw, "ci", body.replace(b"failure", b"success"), github_headers(body, "d-3")
    )
    assert tampered.status_code == 401
    assert (await post(gw, "nope", body, github_headers(body, "d-3"))).status_code == 404
    big = json.dumps({**RUN, "pad": "x" * 5000}).encode()
    too_large = await post(gw, "ci", big, github_headers(big, "d-4"))
    assert too_large.status_code == 413
    ping = json.dumps({"zen": "Keep it logically awesome."}).encode()
    ignored = await post(gw, "ci", ping, github_headers(ping, "d-5", event="ping"))
    assert ignored.status_code == 202 and ignored.json() == {"status": "ignored"}
    text = b"payload=not-json"
    not_json = await post(gw, "ci", text, github_headers(text, "d-6"))
    assert not_json.status_code == 422 and "JSON" in not_json.json()["error"]["message"]
    assert await chat.quiet()
    # A refused delivery was not remembered: once signed properly it goes through.
    ok = await post(gw, "ci", body, github_headers(body, "d-3"))
    assert ok.json() == {"status": "accepted"}
    await chat.wait()


async def test_oversized_chunked_body_is_refused(
    hooked: tuple[GatewayHarness, Chat],
) -> None:
    gw, chat = hooked

    async def chunks() -> AsyncIterator[bytes]:  # no Content-Length to trust
        for _ in range(10):
            yield b"x" * 1000

    async with httpx.AsyncClient(base_url=gw.url) as client:
        response = await client.post(
            "/api/v1/hooks/ci", content=chunks(), headers=github_headers(b"", "d-7")
        )
    assert response.status_code == 413
    assert await chat.quiet()


async def test_gitlab_token(hooked: tuple[GatewayHarness, Chat]) -> None:
    gw, chat = hooked
    body = json.dumps({"object_kind": "pipeline", "object_attributes": {"status": "failed"}})
    headers = {"X-Gitlab-Event": "Pipeline Hook", "X-Gitlab-Event-UUID": "u-1"}
    bad = await post(gw, "lab", body.encode(), {**headers, "X-Gitlab-Token": "wrong"})
    assert bad.status_code == 401
    good = await post(gw, "lab", body.encode(), {**headers, "X-Gitlab-Token": GITLAB_SECRET})
    assert good.status_code == 202
    (sent,) = await chat.wait()
    assert sent.text == "GitLab pipeline: failed"


async def test_hmac_timestamp_window(hooked: tuple[GatewayHarness, Chat]) -> None:
    gw, chat = hooked
    body = json.dumps({"alert": {"name": "disk", "state": "firing"}}).encode()
    old = int(time.time()) - 120  # the window is 60 s
    assert (await post(gw, "mon", body, hmac_headers(body, old))).status_code == 401
    now = int(time.time())
    headers = hmac_headers(body, now)
    assert (await post(gw, "mon", body, headers)).status_code == 202
    (sent,) = await chat.wait()
    assert sent.text == "Alert disk is firing"
    assert (await post(gw, "mon", body, headers)).json() == {"status": "duplicate"}
    # Signed over a different timestamp: the signature does not match.
    assert (
        await post(gw, "mon", body, {**headers, "X-Nexflow-Timestamp": str(now + 1)})
    ).status_code == 401
    assert await chat.quiet(1)


async def test_payload_cannot_forge_links_or_lines(
    hooked: tuple[GatewayHarness, Chat],
) -> None:
    gw, chat = hooked
    run = {"workflow_run": {**RUN["workflow_run"], "head_branch": "x\n# [Log in](https://e.vil)"}}
    body = json.dumps(run).encode()
    assert (await post(gw, "ci", body, github_headers(body, "d-8"))).status_code == 202
    (sent,) = await chat.wait()
    # One line, and the link syntax is broken: no "Log in" label over someone's URL.
    assert sent.text == (
        "CI tests: failure on x # [Log in] (https://e.vil) — "
        "https://github.com/acme/app/actions/runs/1"
    )


def queued_webhook_messages(db: Path) -> int:
    with closing(sqlite3.connect(db)) as conn:
        row = conn.execute("SELECT COUNT(*) FROM outbox WHERE payload LIKE '%CI tests%'")
        return int(row.fetchone()[0])


async def test_replay_protection_survives_a_restart(tmp_path: Path) -> None:
    body = json.dumps(RUN).encode()
    async with running_telegram(tmp_path, config=CONFIG) as (gw, fake):
        chat = Chat(fake)
        await chat.open()
        assert (await post(gw, "ci", body, github_headers(body, "d-9"))).status_code == 202
        (sent,) = await chat.wait()
        assert sent.text == EXPECTED
    db = tmp_path / "home" / "nexflow.db"
    assert queued_webhook_messages(db) == 1
    async with running_telegram(tmp_path, config=CONFIG) as (gw, fake):  # same home
        again = await post(gw, "ci", body, github_headers(body, "d-9"))
        assert again.status_code == 200 and again.json() == {"status": "duplicate"}
    assert queued_webhook_messages(db) == 1  # nothing queued for the chat again


async def test_no_gateway_token_needed_but_the_api_still_wants_it(tmp_path: Path) -> None:
    config = {**CONFIG, "web": {"token": "gateway-token-0123456789"}}
    async with running_telegram(tmp_path, config=config) as (gw, fake):
        chat = Chat(fake)
        await chat.open()
        body = json.dumps(RUN).encode()
        # No token, a foreign Origin, and GitHub's content type: the signature is enough.
        headers = {**github_headers(body, "d-10"), "Origin": "https://github.com"}
        assert (await post(gw, "ci", body, headers)).status_code == 202
        (sent,) = await chat.wait()
        assert sent.text == EXPECTED
        async with httpx.AsyncClient(base_url=gw.url) as client:
            assert (await client.get("/api/v1/sessions")).status_code == 401
            leaked = await client.post(
                "/api/v1/hooks/ci?token=x", content=body, headers=github_headers(body, "d-11")
            )
            assert leaked.status_code == 400  # tokens in URLs are refused here too
        # The exemption is the hook route's alone: dot segments do not reach other routes.
        for path in ("/api/v1/hooks/../sessions", "/api/v1/hooks/..%2Fsessions"):
            assert await raw_get(gw.port, path) == 404


async def raw_get(port: int, path: str) -> int:
    """The status of a GET sent as written (httpx would normalise the path)."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n".encode())
    await writer.drain()
    status = int((await reader.readline()).split()[1])
    writer.close()
    await writer.wait_closed()
    return status
