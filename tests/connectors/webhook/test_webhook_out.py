"""The outbound webhook channel against a real aiohttp receiver on loopback, driven
through the real outbox and SQLite storage."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from aiohttp import web
from prometheus_client import CollectorRegistry

from connectors.webhook.config import WebhookConfig
from connectors.webhook.connector import WebhookConnector, retry_after
from nexflow.app import chat_connectors
from nexflow.bus.events import ConfirmationOut, TextOut
from nexflow.config import ConfigError, load_config
from nexflow.config.model import OutboxConfig
from nexflow.gateway import DeliveryError, OutboxDispatcher
from nexflow.hooks.signatures import verify
from nexflow.observability.metrics import Metrics
from nexflow.storage import SQLStorage
from nexflow.testing.harness import free_port

SECRET = "s3cret-s3cret-s3cret"


@dataclass
class Receiver:
    """Answers with ``statuses`` in turn (then 200); keeps what it was sent."""

    statuses: list[int] = field(default_factory=list)
    retry_after: str | None = None
    bodies: list[dict[str, object]] = field(default_factory=list)
    deliveries: list[str] = field(default_factory=list)
    forged: int = 0
    attempts: int = 0
    url: str = ""

    async def handle(self, request: web.Request) -> web.Response:
        self.attempts += 1
        raw = await request.read()
        ts = request.headers.get("X-Nexflow-Timestamp", "")
        expected = hmac.new(SECRET.encode(), f"{ts}.".encode() + raw, hashlib.sha256)
        given = request.headers.get("X-Nexflow-Signature", "")
        if not hmac.compare_digest(given, "sha256=" + expected.hexdigest()):
            self.forged += 1
            return web.Response(status=401)
        # the inbound hmac scheme accepts it as well: one signature scheme both ways
        verify("hmac", SECRET, request.headers, raw, now=time.time(), window_s=60)
        assert request.headers["Content-Type"] == "application/json"
        assert request.headers["X-Nexflow-Delivery"] == hashlib.sha256(raw).hexdigest()
        if self.statuses:
            status = self.statuses.pop(0)
            headers = {"Retry-After": self.retry_after} if self.retry_after else {}
            return web.Response(status=status, headers=headers)
        self.bodies.append(json.loads(raw))
        self.deliveries.append(request.headers["X-Nexflow-Delivery"])
        return web.json_response({"ok": True})


async def slow(request: web.Request) -> web.Response:
    await asyncio.sleep(1)
    return web.Response()


@pytest.fixture
async def receiver() -> AsyncIterator[Receiver]:
    found = Receiver()
    app = web.Application()
    app.router.add_post("/hook", found.handle)
    app.router.add_post("/slow", slow)
    runner = web.AppRunner(app)
    await runner.setup()
    port = free_port()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    found.url = f"http://127.0.0.1:{port}/hook"
    yield found
    await runner.cleanup()


@pytest.fixture
async def connector(receiver: Receiver) -> AsyncIterator[WebhookConnector]:
    hook = WebhookConnector(
        WebhookConfig.from_section({"url": receiver.url, "secret": SECRET, "timeout_s": 2})
    )
    await hook.start()
    yield hook
    await hook.stop()


def dispatcher(storage: SQLStorage, connector: WebhookConnector) -> OutboxDispatcher:
    config = OutboxConfig(initial_backoff_s=0.05, max_backoff_s=0.1)
    outbox = OutboxDispatcher(storage, config, Metrics(CollectorRegistry()))
    outbox.attach("webhook", connector)
    return outbox


async def settle(storage: SQLStorage, outbox: OutboxDispatcher) -> None:
    outbox.start()
    outbox.notify()
    try:
        async with asyncio.timeout(5):
            while await storage.next_outbox_due() is not None:  # noqa: ASYNC110 - the DB
                await asyncio.sleep(0.02)
    finally:
        await outbox.stop()


async def test_a_reply_is_delivered_signed(
    storage: SQLStorage, receiver: Receiver, connector: WebhookConnector
) -> None:
    outbox = dispatcher(storage, connector)
    oid = await storage.enqueue(
        TextOut(channel="webhook", chat_id="ops", session_id="s1", reply_to="m1", text="hi ✓")
    )
    await settle(storage, outbox)
    item = await storage.get_outbox(oid)
    assert item is not None and item.status == "delivered"
    assert receiver.forged == 0 and receiver.attempts == 1
    assert receiver.bodies == [
        {
            "kind": "text",
            "chat_id": "ops",
            "session_id": "s1",
            "reply_to": "m1",
            "text": "hi ✓",
            "channel": "webhook",
        }
    ]


async def test_503_twice_then_delivered_once(
    storage: SQLStorage, receiver: Receiver, connector: WebhookConnector
) -> None:
    receiver.statuses = [503, 503]
    receiver.retry_after = "0"  # not a wait: the outbox's own backoff applies
    outbox = dispatcher(storage, connector)
    oid = await storage.enqueue(TextOut(channel="webhook", chat_id="ops", text="deploy done"))
    await settle(storage, outbox)
    item = await storage.get_outbox(oid)
    assert item is not None and item.status == "delivered" and item.attempts == 3
    assert receiver.attempts == 3 and receiver.forged == 0
    assert [b["text"] for b in receiver.bodies] == ["deploy done"]
    assert len(receiver.deliveries) == 1


async def test_400_fails_without_a_retry(
    storage: SQLStorage, receiver: Receiver, connector: WebhookConnector
) -> None:
    receiver.statuses = [400]
    outbox = dispatcher(storage, connector)
    oid = await storage.enqueue(TextOut(channel="webhook", chat_id="ops", text="x"))
    await settle(storage, outbox)
    item = await storage.get_outbox(oid)
    assert item is not None and item.status == "failed"
    assert item.last_error == "webhook answered HTTP 400"
    assert receiver.attempts == 1 and receiver.bodies == []


async def test_failures_are_delivery_errors(
    receiver: Receiver, connector: WebhookConnector
) -> None:
    out = TextOut(channel="webhook", chat_id="ops", text="x")
    receiver.statuses, receiver.retry_after = [429], "7"
    with pytest.raises(DeliveryError) as limited:
        await connector.send(out)
    assert limited.value.retryable and limited.value.retry_after_s == 7
    receiver.statuses, receiver.retry_after = [408, 404], None
    with pytest.raises(DeliveryError) as timed_out:
        await connector.send(out)
    assert timed_out.value.retryable
    with pytest.raises(DeliveryError) as missing:
        await connector.send(out)
    assert not missing.value.retryable
    unused = f"http://127.0.0.1:{free_port()}/hook"
    closed = WebhookConnector(WebhookConfig.from_section({"url": unused, "secret": SECRET}))
    with pytest.raises(DeliveryError, match="not started"):
        await closed.send(out)
    await closed.start()
    try:
        with pytest.raises(DeliveryError, match="unreachable") as refused:
            await closed.send(out)
        assert refused.value.retryable
    finally:
        await closed.stop()
    assert [e async for e in connector.events()] == []


async def test_a_timeout_is_retryable(receiver: Receiver) -> None:
    url = receiver.url.replace("/hook", "/slow")
    hook = WebhookConnector(
        WebhookConfig.from_section({"url": url, "secret": SECRET, "timeout_s": 0.2})
    )
    await hook.start()
    try:
        with pytest.raises(DeliveryError, match=r"timed out after 0\.2 s") as late:
            await hook.send(TextOut(channel="webhook", chat_id="ops", text="x"))
        assert late.value.retryable
    finally:
        await hook.stop()


async def test_other_kinds_degrade_to_text(receiver: Receiver, connector: WebhookConnector) -> None:
    ask = ConfirmationOut(
        channel="webhook",
        chat_id="ops",
        confirmation_id="c1",
        title="Run it?",
        detail="rm -rf build",
        expires_at=1.0,
    )
    await connector.send(ask)
    body = receiver.bodies[0]
    assert body["kind"] == "confirmation" and body["confirmation_id"] == "c1"
    assert str(body["text"]).startswith("Confirmation needed: Run it?\nrm -rf build")


def test_retry_after_forms() -> None:
    assert retry_after("12", 0) == 12
    assert retry_after("Thu, 01 Jan 1970 00:01:40 GMT", 40) == 60
    assert retry_after("soon", 0) is None
    assert retry_after("-3", 0) is None
    assert retry_after("999999", 0) == 3600


def test_config_errors_name_the_key() -> None:
    with pytest.raises(ConfigError) as bad:
        WebhookConfig.from_section({"url": "ftp://example.com/x", "secret": "short"})
    assert {p.path for p in bad.value.problems} == {
        "connectors.webhook.url",
        "connectors.webhook.secret",
    }
    with pytest.raises(ConfigError) as reserved:
        WebhookConfig.from_section(
            {"url": "https://example.com", "secret": SECRET, "headers": {"X-Nexflow-Delivery": "1"}}
        )
    assert [p.path for p in reserved.value.problems] == ["connectors.webhook.headers"]
    for section in (
        {"url": "https://example.com", "secret": SECRET, "timeout_s": 0},
        {"url": "https://example.com", "secret": SECRET, "retries": 3},
        {"url": "https://", "secret": SECRET},
        {"secret": SECRET},
    ):
        with pytest.raises(ConfigError, match=r"connectors\.webhook\."):
            WebhookConfig.from_section(section)


def test_the_section_builds_the_connector(tmp_path: Path) -> None:
    path = tmp_path / "config.yml"
    path.write_text(
        "connectors:\n"
        "  webhook:\n"
        '    url: "https://hooks.example.com/nexflow"\n'
        '    secret: "${HOOK_OUT_SECRET}"\n'
        "    headers: {Authorization: Bearer abc}\n"
    )
    env = {"NEXFLOW_HOME": str(tmp_path / "home"), "HOOK_OUT_SECRET": SECRET}
    built = chat_connectors(load_config(path, env))
    assert list(built) == ["webhook"]
    assert isinstance(built["webhook"], WebhookConnector)
    assert built["webhook"].manifest.renders == frozenset({"text"})
    with pytest.raises(ConfigError, match=r"connectors\.webhook\.secret"):
        chat_connectors(load_config(path, {**env, "HOOK_OUT_SECRET": "short"}))
