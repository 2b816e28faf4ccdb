"""Patch events on ``/ws/events``: the owner's tabs hear a patch proposed, merged and
rejected (GraphStudio's patch list and chat cards follow them); nobody else does."""

from __future__ import annotations

import asyncio
import json

import websockets
from test_events_ws import next_frame, ready, ws_url
from web_users import CAROL

from nexflow.testing.harness import GatewayHarness


async def propose(gw: GatewayHarness, text: str) -> str:
    assert gw.app is not None and gw.app.workspaces is not None
    found = await gw.app.storage.find_user("web", "owner")
    assert found is not None
    content = json.dumps({"state": {"items": [{"text": text, "done": False}]}})
    patch = await gw.app.workspaces.propose(found[0], "panel:todo", content, text, "api")
    return patch.id


async def test_owner_hears_proposed_merged_and_rejected(gw: GatewayHarness) -> None:
    assert (await gw.http.post("/api/v1/panels", json={"template": "todo"})).status_code == 201
    carol_ws = gw.url.replace("http://", "ws://") + "/ws/events"
    async with (
        websockets.connect(ws_url(gw)) as mine,
        websockets.connect(
            carol_ws, additional_headers={"Authorization": f"Bearer {CAROL}"}
        ) as hers,
    ):
        await ready(mine)
        await ready(hers)
        first = await propose(gw, "milk")
        frame = await next_frame(mine, "patch")
        assert (frame["event"], frame["patch"]["id"]) == ("proposed", first)
        assert (frame["patch"]["status"], frame["patch"]["summary"]) == ("pending", "milk")
        assert (await gw.http.post(f"/api/v1/patches/{first}/accept")).status_code == 200
        frame = await next_frame(mine, "patch")
        assert (frame["event"], frame["patch"]["status"]) == ("merged", "merged")
        second = await propose(gw, "bread")
        assert (await next_frame(mine, "patch"))["event"] == "proposed"
        assert (await gw.http.post(f"/api/v1/patches/{second}/reject")).status_code == 200
        frame = await next_frame(mine, "patch")
        assert (frame["event"], frame["patch"]["id"]) == ("rejected", second)
        # Carol's socket heard none of it.
        await hers.send(json.dumps({"type": "ping"}))
        assert json.loads(await asyncio.wait_for(hers.recv(), 5))["type"] == "pong"
