"""The web never loses a reply: items no tab acknowledged are parked (not failed, not
"delivered"), shown in the session's timeline, and delivered when a tab connects and
acknowledges them. Also the chat socket's frame errors and session ownership. A real
uvicorn, real WebSockets."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import websockets
from websockets.asyncio.client import ClientConnection

from nexflow.bus.events import TextOut
from nexflow.storage.base import OutboxItem
from nexflow.testing.fake_llm import Reply
from nexflow.testing.harness import GatewayHarness

Frame = dict[str, Any]
OWNER_TOKEN = "owner-token-0123456789abcdef"
ALICE_TOKEN = "alice-token-0123456789abcdef"


def ws_url(gw: GatewayHarness, session: str) -> str:
    return gw.url.replace("http", "ws") + f"/ws/chat/{session}"


async def recv_until(ws: ClientConnection, wanted: Callable[[Frame], bool]) -> Frame:
    async with asyncio.timeout(15):
        while True:
            frame: Frame = json.loads(await ws.recv())
            if wanted(frame):
                return frame


async def outbox_item(gw: GatewayHarness, outbox_id: int, status: str) -> OutboxItem:
    """The item once it has ``status`` (the dispatcher works in the background)."""
    assert gw.app is not None
    async with asyncio.timeout(10):
        while True:
            item = await gw.app.storage.get_outbox(outbox_id)
            assert item is not None
            if item.status == status:
                return item
            await asyncio.sleep(0.02)


async def timeline_card(gw: GatewayHarness, session: str, outbox_id: int) -> Frame:
    data = (await gw.http.get(f"/api/v1/sessions/{session}")).json()
    (card,) = [i for i in data["timeline"] if i.get("outbox_id") == outbox_id]
    return dict(card)


async def reminder(gw: GatewayHarness, session: str, text: str) -> int:
    assert gw.app is not None
    out = TextOut(channel="web", chat_id=session, session_id=session, text=text)
    return await gw.app.outbox.post(out)


def failures(gw: GatewayHarness) -> float:
    assert gw.app is not None
    value: float = gw.app.metrics.delivery_failures.labels("web", "false")._value.get()
    return value


async def test_reminder_without_a_tab_is_parked_then_delivered_on_connect(
    gateway: GatewayHarness,
) -> None:
    session = (await gateway.chat("hello"))["session"]
    oid = await reminder(gateway, session, "⏰ Reminder: stretch")
    parked = await outbox_item(gateway, oid, "parked")
    assert parked.attempts == 0 and parked.last_error is None  # not a failure
    assert failures(gateway) == 0
    card = await timeline_card(gateway, session, oid)
    assert card["kind"] == "card" and card["delivered"] is False
    assert card["outbound"]["text"] == "⏰ Reminder: stretch"
    async with websockets.connect(ws_url(gateway, session)) as ws:
        frame = await recv_until(ws, lambda f: f.get("outbox_id") == oid)
        assert frame["type"] == "reply" and frame["text"] == "⏰ Reminder: stretch"
        await ws.send(json.dumps({"type": "ack", "outbox_id": oid}))
        delivered = await outbox_item(gateway, oid, "delivered")
    assert delivered.attempts == 1
    assert (await timeline_card(gateway, session, oid))["delivered"] is True


async def test_unacknowledged_reply_is_not_delivered(gateway: GatewayHarness) -> None:
    session = (await gateway.chat("hello"))["session"]
    url = ws_url(gateway, session)
    async with websockets.connect(url) as ws:
        await recv_until(ws, lambda f: f["type"] == "session")
        oid = await reminder(gateway, session, "sync: 2 patches")
        await recv_until(ws, lambda f: f.get("outbox_id") == oid)
        await asyncio.sleep(0.3)  # the tab saw it but never said so
        assert gateway.app is not None
        item = await gateway.app.storage.get_outbox(oid)
        assert item is not None and item.status == "pending"
    # The last tab closed without acknowledging: parked at once, not after the timeout.
    await outbox_item(gateway, oid, "parked")
    async with websockets.connect(url) as ws:  # the tab comes back: it gets it again
        await recv_until(ws, lambda f: f.get("outbox_id") == oid)
        await ws.send(json.dumps({"type": "ack", "outbox_id": oid}))
        await outbox_item(gateway, oid, "delivered")
    assert failures(gateway) == 0


async def test_resume_frame_delivers_what_was_parked(gateway: GatewayHarness) -> None:
    session = (await gateway.chat("hello"))["session"]
    async with websockets.connect(ws_url(gateway, session)) as ws:
        await recv_until(ws, lambda f: f["type"] == "session")
        assert gateway.app is not None
        # Parked while the tab is open (e.g. it did not answer in time): a resume frame
        # asks for it again.
        oid = await gateway.app.storage.enqueue(
            TextOut(channel="web", chat_id=session, session_id=session, text="late")
        )
        await gateway.app.storage.park_outbox(oid)
        await ws.send(json.dumps({"type": "resume"}))
        await recv_until(ws, lambda f: f.get("outbox_id") == oid)
        await ws.send(json.dumps({"type": "ack", "outbox_id": oid}))
        await outbox_item(gateway, oid, "delivered")


async def test_turn_reply_over_the_socket_is_acknowledged(gateway: GatewayHarness) -> None:
    async with websockets.connect(ws_url(gateway, "new")) as ws:
        await ws.send(json.dumps({"type": "message", "message": "hi there"}))
        reply = await recv_until(ws, lambda f: f["type"] == "reply")
        assert reply["text"] == "Echo: hi there" and isinstance(reply["outbox_id"], int)
        await asyncio.sleep(0.3)
        assert gateway.app is not None
        item = await gateway.app.storage.get_outbox(reply["outbox_id"])
        assert item is not None and item.status == "pending"  # waiting for the ack
        await ws.send(json.dumps({"type": "ack", "outbox_id": reply["outbox_id"]}))
        await outbox_item(gateway, reply["outbox_id"], "delivered")


async def test_binary_and_oversized_frames_get_error_frames(gateway: GatewayHarness) -> None:
    async with websockets.connect(ws_url(gateway, "new"), max_size=None) as ws:
        await ws.send(b"\x00\x01binary")
        error = await recv_until(ws, lambda f: f["type"] == "error")
        assert error["code"] == "binary_frame" and "text" in error["message"]
        await ws.send("x" * (16_000 * 4 + 64 * 1024 + 1))
        error = await recv_until(ws, lambda f: f["type"] == "error")
        assert error["code"] == "frame_too_large" and "16000 characters" in error["message"]
        await ws.send("not json")
        assert (await recv_until(ws, lambda f: f["type"] == "error"))["code"] == "invalid_frame"
        # The socket is still usable.
        await ws.send(json.dumps({"type": "message", "message": "still here"}))
        reply = await recv_until(ws, lambda f: f["type"] == "reply")
        assert reply["text"] == "Echo: still here"


@pytest.fixture
async def with_alice(tmp_path: Path) -> Any:
    home = tmp_path / "home"
    home.mkdir(parents=True)
    config = home / "config.yml"
    config.write_text(f"web:\n  users:\n    alice: {ALICE_TOKEN}\n")
    async with GatewayHarness(home, config_file=config, token=OWNER_TOKEN) as gw:
        yield gw


async def test_a_tab_opens_only_its_own_sessions(with_alice: GatewayHarness) -> None:
    gw = with_alice
    owners = (await gw.chat("mine"))["session"]
    async with websockets.connect(ws_url(gw, owners)) as ws:
        await ws.send(json.dumps({"type": "auth", "token": ALICE_TOKEN}))
        assert json.loads(await ws.recv())["type"] == "auth_ok"
        refused = json.loads(await ws.recv())
        assert refused == {
            "type": "error",
            "code": "not_allowed",
            "message": "That session belongs to someone else.",
        }
        with pytest.raises(websockets.ConnectionClosed) as info:
            await ws.recv()
        assert info.value.rcvd is not None and info.value.rcvd.code == 4403
    # Alice speaks as herself over her own socket.
    async with websockets.connect(ws_url(gw, "new")) as ws:
        await ws.send(json.dumps({"type": "auth", "token": ALICE_TOKEN}))
        await ws.send(json.dumps({"type": "message", "message": "from alice"}))
        session = (await recv_until(ws, lambda f: f["type"] == "session"))["id"]
    assert gw.app is not None
    alice = await gw.app.storage.find_user("web", "user:alice")
    record = await gw.app.storage.get_session(session)
    assert alice is not None and record is not None and record.user_id == alice[0]


async def test_http_reply_is_delivered_by_its_response_and_a_lost_one_waits(
    tmp_path: Path,
) -> None:
    env = {"NEXFLOW_WEB__REPLY_TIMEOUT_S": "0.3"}
    async with GatewayHarness(tmp_path / "home", env=env) as gw:
        assert gw.app is not None
        answered = await gw.chat("hello")
        assert answered["reply"] == "Echo: hello"
        row = await gw.app.storage.outbox_for_inbox(answered["message_id"])
        assert row is not None and row.status == "delivered"  # the response carried it
        gw.llm.push(Reply(text="late", delay_s=1.0))
        late = await gw.chat("slow one", session=answered["session"])
        assert late["status"] == "pending"  # the caller stopped waiting
        for _ in range(100):
            row = await gw.app.storage.outbox_for_inbox(late["message_id"])
            if row is not None and row.status == "parked":
                break
            await asyncio.sleep(0.05)
        assert row is not None and row.status == "parked"  # nobody saw it: it waits for a tab
