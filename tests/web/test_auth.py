"""Bearer-token auth: headers only, never URLs; WebSockets authenticate with a first frame."""

import json
from pathlib import Path

import httpx
import pytest
import websockets

from nexflow.testing.harness import GatewayHarness

TOKEN = "s3cret-token-value"


async def test_api_requires_the_token(tmp_path: Path) -> None:
    async with GatewayHarness(tmp_path, token=TOKEN) as gw:
        async with httpx.AsyncClient(base_url=gw.url) as anonymous:
            no_token = await anonymous.post("/api/v1/chat", json={"message": "hi"})
            assert no_token.status_code == 401
            assert no_token.headers["www-authenticate"] == "Bearer"
            wrong = await anonymous.get(
                "/api/v1/sessions", headers={"Authorization": "Bearer nope"}
            )
            assert wrong.status_code == 401
            assert (await anonymous.get("/metrics")).status_code == 401
            assert (await anonymous.get("/health")).status_code == 200
        assert gw.llm.requests == []
        ok = await gw.http.post("/api/v1/chat", json={"message": "hi"})
        assert ok.status_code == 200 and ok.json()["reply"] == "Echo: hi"
        # The token is never echoed back.
        status = await gw.http.get("/api/v1/status")
        assert TOKEN not in status.text and status.json()["auth"] is True


async def test_token_in_url_is_refused_even_when_correct(tmp_path: Path) -> None:
    async with GatewayHarness(tmp_path, token=TOKEN) as gw:
        resp = await gw.http.get(f"/api/v1/sessions?token={TOKEN}")
        assert resp.status_code == 400 and resp.json()["error"]["code"] == "token_in_url"
        with pytest.raises(websockets.InvalidStatus):
            await websockets.connect(
                gw.url.replace("http", "ws") + f"/ws/logs?access_token={TOKEN}"
            )


async def test_websocket_auth_by_first_frame(tmp_path: Path) -> None:
    async with GatewayHarness(tmp_path, token=TOKEN) as gw:
        url = gw.url.replace("http", "ws") + "/ws/chat/new"
        async with websockets.connect(url) as ws:
            await ws.send(json.dumps({"type": "auth", "token": "wrong"}))
            with pytest.raises(websockets.ConnectionClosed) as info:
                await ws.recv()
            assert info.value.rcvd is not None and info.value.rcvd.code == 4401
        async with websockets.connect(url) as ws:
            await ws.send(json.dumps({"type": "auth", "token": TOKEN}))
            assert json.loads(await ws.recv())["type"] == "auth_ok"
            await ws.send(json.dumps({"type": "message", "message": "hello"}))
            seen = []
            while not seen or seen[-1]["type"] != "reply":
                seen.append(json.loads(await ws.recv()))
            assert seen[-1]["text"] == "Echo: hello"
        headers = {"Authorization": f"Bearer {TOKEN}"}
        async with websockets.connect(url, additional_headers=headers) as ws:
            await ws.send(json.dumps({"type": "message", "message": "via header"}))
            assert json.loads(await ws.recv())["type"] == "session"
