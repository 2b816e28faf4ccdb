"""A Stop across replicas (:class:`nexflow.gateway.stop.RemoteStops`): two whole gateways
on one Postgres, a slow turn running on Y, the Stop sent to X (over HTTP and as the
``{"type": "stop"}`` frame of a tab on X). Y stops it as a local Stop does (done, with
``(stopped)``, never re-run); a Stop for someone else's session is refused, on X by the
route and on Y by the owner check of the request that crossed the bus."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import psycopg
import websockets
import yaml
from websockets.asyncio.client import ClientConnection

from nexflow.testing.fake_llm import Reply
from nexflow.testing.harness import GatewayHarness
from nexflow.testing.waiting import wait_until

Frame = dict[str, Any]
PARTIAL = "Let me look at the clock first."
CAROL = "carol-web-token-0123456789abcdef"


def slow_turn(gw: GatewayHarness, delay_s: float = 8.0) -> None:
    """The next turn streams ``PARTIAL`` and calls a tool, then its model call hangs."""
    gw.llm.push(Reply(text=PARTIAL, tool_calls=(("get_time", {}),)))
    gw.llm.push(Reply(text="this never arrives", delay_s=delay_s))


async def recv_until(ws: ClientConnection, wanted: Callable[[Frame], bool]) -> Frame:
    async with asyncio.timeout(15):
        while True:
            frame: Frame = json.loads(await ws.recv())
            if wanted(frame):
                return frame


def inbox_rows(pg_url: str) -> list[tuple[int, str, int]]:
    with psycopg.connect(pg_url) as conn:
        rows = conn.execute("SELECT id, status, attempts FROM inbox ORDER BY id").fetchall()
    return [(int(i), str(s), int(a)) for i, s, a in rows]


async def test_a_stop_sent_to_x_stops_the_turn_running_on_y(tmp_path: Path, pg_url: str) -> None:
    config = tmp_path / "config.yml"
    config.write_text(yaml.safe_dump({"web": {"users": {"carol": CAROL}}}))
    async with (
        GatewayHarness(tmp_path / "x", storage_url=pg_url, config_file=config) as x,
        GatewayHarness(tmp_path / "y", storage_url=pg_url, config_file=config) as y,
    ):
        assert x.app is not None and y.app is not None
        assert x.app.gateway.remote_stops is not None
        # Nothing runs: answered at once, no waiting for a replica to answer.
        session = (await y.chat("hello"))["session"]
        nothing = (await x.http.post(f"/api/v1/sessions/{session}/stop")).json()
        assert nothing == {"stopped": False, "message_id": None}

        slow_turn(y)
        waiting = asyncio.create_task(y.chat("a long question", session))
        await wait_until(lambda: len(y.llm.requests) == 3)  # Y's slow model call is running
        assert y.app.gateway.running_here(session) and not x.app.gateway.running_here(session)

        # Someone else's Stop: X's route says no such session; a request that reaches Y
        # over the bus naming another user is refused there (the owner read from storage).
        headers = {"Authorization": f"Bearer {CAROL}"}
        async with httpx.AsyncClient(base_url=x.url, headers=headers) as carol:
            assert (await carol.post(f"/api/v1/sessions/{session}/stop")).status_code == 404
        forged = await x.app.gateway.remote_stops.request(session, "carols-user-id")
        assert forged is None
        assert y.app.gateway.running_here(session) and not waiting.done()

        resp = await x.http.post(f"/api/v1/sessions/{session}/stop")
        assert resp.status_code == 200
        body = resp.json()
        assert body["stopped"] is True
        summary = await asyncio.wait_for(waiting, 10)
        assert summary["error"] == "stopped"
        assert summary["reply"] == "(stopped)"  # nobody followed it: nothing streamed
        stopped_id = body["message_id"]
        await asyncio.sleep(1.0)  # time for a wrong re-run to show
        assert len(y.llm.requests) == 3 and x.llm.requests == []
        assert (stopped_id, "done", 1) in inbox_rows(pg_url)
        assert await x.app.storage.pending_inbox() == []
        assert (await x.chat("next", session))["reply"] == "Echo: next"


async def test_a_tab_on_x_stops_the_turn_running_on_y(tmp_path: Path, pg_url: str) -> None:
    async with (
        GatewayHarness(tmp_path / "x", storage_url=pg_url) as x,
        GatewayHarness(tmp_path / "y", storage_url=pg_url) as y,
    ):
        assert x.app is not None and y.app is not None
        session = (await y.chat("hello"))["session"]
        url = x.url.replace("http", "ws") + f"/ws/chat/{session}"
        async with websockets.connect(url) as tab:
            await recv_until(tab, lambda f: f["type"] == "session")
            slow_turn(y)
            waiting = asyncio.create_task(y.chat("what time is it, slowly", session))
            call = await recv_until(tab, lambda f: f["type"] == "tool_call")  # relayed
            assert call["name"] == "get_time"
            await wait_until(lambda: len(y.llm.requests) == 3)
            await tab.send(json.dumps({"type": "stop"}))
            stopped = await recv_until(tab, lambda f: f["type"] in ("stopped", "reply"))
            assert stopped["type"] == "stopped" and stopped["message_id"] is not None
            summary = await asyncio.wait_for(waiting, 10)
            assert summary["error"] == "stopped"
            assert summary["reply"] == f"{PARTIAL}\n\n(stopped)"  # a tab followed it
        await asyncio.sleep(1.0)
        assert len(y.llm.requests) == 3 and x.llm.requests == []
        assert (stopped["message_id"], "done", 1) in inbox_rows(pg_url)
