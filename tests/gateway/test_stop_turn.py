"""Stop a running turn: the ``{"type": "stop"}`` frame of ``/ws/chat`` and
``POST /api/v1/sessions/{id}/stop``. The turn ends *done* with the text it streamed so far
(never failed, never a dead letter, never re-run after a restart), every tab of the
session gets ``{"type": "stopped"}``, and the next message is answered as usual. A real
uvicorn, real WebSockets, the scripted fake model (its second call is slow)."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import websockets
import yaml
from websockets.asyncio.client import ClientConnection

from nexflow.testing.fake_llm import Reply
from nexflow.testing.harness import GatewayHarness
from nexflow.testing.waiting import wait_until
from nexflow.web.frames import SERVER_FRAME

Frame = dict[str, Any]
PARTIAL = "Let me look at the clock first."
CAROL = "carol-web-token-0123456789abcdef"


def ws_url(gw: GatewayHarness, session: str) -> str:
    return gw.url.replace("http", "ws") + f"/ws/chat/{session}"


async def recv_until(ws: ClientConnection, wanted: Callable[[Frame], bool]) -> Frame:
    async with asyncio.timeout(15):
        while True:
            frame: Frame = json.loads(await ws.recv())
            SERVER_FRAME.validate_python(frame)  # every frame is one of the typed union
            if wanted(frame):
                return frame


def slow_turn(gw: GatewayHarness, delay_s: float = 8.0) -> None:
    """The next turn streams ``PARTIAL`` and calls a tool, then its model call hangs."""
    gw.llm.push(Reply(text=PARTIAL, tool_calls=(("get_time", {}),)))
    gw.llm.push(Reply(text="this never arrives", delay_s=delay_s))


async def inbox_status(gw: GatewayHarness, inbox_id: int) -> str:
    assert gw.app is not None
    item = await gw.app.storage.get_inbox(inbox_id)
    assert item is not None
    return item.status


async def test_the_stop_frame_ends_the_turn_with_what_streamed(gateway: GatewayHarness) -> None:
    session = (await gateway.chat("hello"))["session"]
    slow_turn(gateway)
    async with websockets.connect(ws_url(gateway, session)) as ws:
        await recv_until(ws, lambda f: f["type"] == "session")  # following it: streamed to us
        await ws.send(json.dumps({"type": "message", "message": "what time is it, slowly"}))
        accepted = await recv_until(ws, lambda f: f["type"] == "accepted")
        call = await recv_until(ws, lambda f: f["type"] == "tool_call")
        assert call["name"] == "get_time"
        assert call["label"] == "Clock: current time"  # plain words, not the raw name
        await recv_until(ws, lambda f: f["type"] == "tool_result")
        await wait_until(lambda: len(gateway.llm.requests) == 3)  # the slow call is running
        await ws.send(json.dumps({"type": "stop"}))
        stopped = await recv_until(ws, lambda f: f["type"] in ("stopped", "reply"))
        assert stopped == {"type": "stopped", "message_id": accepted["message_id"]}
        assert await inbox_status(gateway, accepted["message_id"]) == "done"
        # The history keeps the question and the text that streamed, marked stopped.
        data = (await gateway.http.get(f"/api/v1/sessions/{session}")).json()
        said = [(m["role"], m["content"]) for m in data["messages"]]
        assert said[2:] == [
            ("user", "what time is it, slowly"),
            ("assistant", f"{PARTIAL}\n\n(stopped)"),
        ]
        # Stop with nothing running answers this tab only.
        await ws.send(json.dumps({"type": "stop"}))
        assert await recv_until(ws, lambda f: f["type"] == "stopped") == {
            "type": "stopped",
            "message_id": None,
        }
        # The next message is answered normally.
        await ws.send(json.dumps({"type": "message", "message": "hello again"}))
        reply = await recv_until(ws, lambda f: f["type"] == "reply")
        assert reply["text"] == "Echo: hello again"
    dead = (await gateway.http.get("/api/v1/dead-letters")).json()
    assert dead == []


async def test_stop_over_http_and_no_rerun_after_a_restart(tmp_path: Path) -> None:
    home = tmp_path / "home"
    async with GatewayHarness(home) as gw:
        assert gw.app is not None
        slow_turn(gw, delay_s=8.0)
        waiting = asyncio.create_task(gw.chat("a long question"))
        await wait_until(lambda: len(gw.llm.requests) == 2)
        (listed,) = (await gw.http.get("/api/v1/sessions")).json()
        resp = await gw.http.post(f"/api/v1/sessions/{listed['id']}/stop")
        assert resp.status_code == 200
        body = resp.json()
        assert body["stopped"] is True
        summary = await asyncio.wait_for(waiting, 10)
        assert summary["error"] == "stopped"  # the waiting HTTP caller is answered at once
        # Nobody followed this HTTP turn, so it did not stream: nothing partial to keep.
        assert summary["reply"] == "(stopped)"
        assert await inbox_status(gw, body["message_id"]) == "done"
        assert body["message_id"] not in [i.id for i in await gw.app.storage.pending_inbox()]
        again = (await gw.http.post(f"/api/v1/sessions/{listed['id']}/stop")).json()
        assert again == {"stopped": False, "message_id": None}
        unknown = await gw.http.post("/api/v1/sessions/nope/stop")
        assert unknown.status_code == 404
        assert unknown.json()["error"]["code"] == "unknown_session"
    # A restart recovers pending turns: the stopped one is not among them.
    async with GatewayHarness(home) as gw:
        assert gw.app is not None
        await asyncio.sleep(0.5)
        assert gw.llm.requests == []
        reply = await gw.chat("after the restart", session=listed["id"])
        assert reply["reply"] == "Echo: after the restart"


async def test_another_users_session_cannot_be_stopped(tmp_path: Path) -> None:
    config = tmp_path / "config.yml"
    config.write_text(yaml.safe_dump({"web": {"users": {"carol": CAROL}}}))
    async with GatewayHarness(tmp_path / "home", config_file=config) as gw:
        session = (await gw.chat("mine"))["session"]
        headers = {"Authorization": f"Bearer {CAROL}"}
        async with httpx.AsyncClient(base_url=gw.url, headers=headers) as carol:
            resp = await carol.post(f"/api/v1/sessions/{session}/stop")
        assert resp.status_code == 404  # like a missing one


async def test_a_new_conversations_first_turn_streams_and_stops(gateway: GatewayHarness) -> None:
    """The tab follows a new session only once its message is accepted; the turn streams
    to it all the same (a web turn always streams), so its first reply can be stopped."""
    slow_turn(gateway)
    async with websockets.connect(ws_url(gateway, "new")) as ws:
        await ws.send(json.dumps({"type": "message", "message": "first words"}))
        await recv_until(ws, lambda f: f["type"] == "session")
        accepted = await recv_until(ws, lambda f: f["type"] == "accepted")
        call = await recv_until(ws, lambda f: f["type"] == "tool_call")
        assert call["label"] == "Clock: current time"
        await wait_until(lambda: len(gateway.llm.requests) == 2)
        await ws.send(json.dumps({"type": "stop"}))
        stopped = await recv_until(ws, lambda f: f["type"] == "stopped")
        assert stopped["message_id"] == accepted["message_id"]
