"""``/ws/events``: a tool call reaches every socket of the panel's owner as a rendered
``panel.updated`` frame, toasts and creations too, and nothing reaches another user."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import httpx
import pytest
import websockets
from web_users import CAROL

from nexflow.testing.harness import GatewayHarness

Socket = websockets.ClientConnection


def ws_url(gw: GatewayHarness) -> str:
    return gw.url.replace("http://", "ws://") + "/ws/events"


async def next_frame(ws: Socket, kind: str, seconds: float = 10.0) -> dict[str, Any]:
    """The next frame of ``kind`` (others are skipped)."""
    async with asyncio.timeout(seconds):
        while True:
            frame = json.loads(await ws.recv())
            if frame["type"] == kind:
                return dict(frame)


async def ready(ws: Socket) -> None:
    """Round-trip a ping: the socket is subscribed once the pong comes back."""
    await ws.send(json.dumps({"type": "ping"}))
    await next_frame(ws, "pong")


async def test_tool_call_updates_every_tab_of_the_owner(gw: GatewayHarness) -> None:
    async with websockets.connect(ws_url(gw)) as one, websockets.connect(ws_url(gw)) as two:
        await ready(one)
        await ready(two)
        created = (await gw.http.post("/api/v1/panels", json={"template": "todo"})).json()
        frame = await next_frame(one, "panel.created")
        assert frame["panel"]["id"] == created["id"]
        assert any(t.endswith("add_item") for t in frame["panel"]["tools"])
        panel = created["id"]
        r = await gw.http.post(f"/api/v1/panels/{panel}/tools/add_item", json={"text": "milk"})
        assert r.json()["ok"] is True
        for ws in (one, two):
            update = await next_frame(ws, "panel.updated")
            while update["version"] < 2:  # the creation's own render may come first
                update = await next_frame(ws, "panel.updated")
            assert update["panel_id"] == panel
            assert update["state"]["items"] == [{"text": "milk", "done": False}]
            texts = json.dumps(update["render"])
            assert '"Open"' in texts and "milk" in texts
        # the same tree as the HTTP answer
        got = (await gw.http.get(f"/api/v1/panels/{panel}")).json()
        assert got["render"] == update["render"]


async def test_toast_and_delete_frames(gw: GatewayHarness) -> None:
    async with websockets.connect(ws_url(gw)) as ws:
        await ready(ws)
        panel = (await gw.http.post("/api/v1/panels", json={"template": "todo"})).json()["id"]
        await gw.http.post(f"/api/v1/panels/{panel}/tools/add_item", json={"text": "a"})
        await gw.http.post(f"/api/v1/panels/{panel}/tools/toggle_item", json={"index": 0})
        await gw.http.post(f"/api/v1/panels/{panel}/tools/clear_done", json={})
        toast = await next_frame(ws, "toast")
        assert toast == {"type": "toast", "panel_id": panel, "message": "Removed 1 item(s)"}
        assert (await gw.http.delete(f"/api/v1/panels/{panel}")).status_code == 204
        gone = await next_frame(ws, "panel.deleted")
        assert gone["panel_id"] == panel


async def test_another_user_hears_nothing(gw: GatewayHarness) -> None:
    headers = {"Authorization": f"Bearer {CAROL}"}
    async with websockets.connect(ws_url(gw), additional_headers=headers) as carol:
        await ready(carol)
        panel = (await gw.http.post("/api/v1/panels", json={"template": "todo"})).json()["id"]
        await gw.http.post(f"/api/v1/panels/{panel}/tools/add_item", json={"text": "secret"})
        await carol.send(json.dumps({"type": "ping"}))
        # the owner's frames would be queued before the pong if they were hers
        await asyncio.sleep(0.5)
        await carol.send(json.dumps({"type": "ping"}))
        frames: list[dict[str, Any]] = []
        async with asyncio.timeout(5):
            while len([f for f in frames if f["type"] == "pong"]) < 2:
                frames.append(json.loads(await carol.recv()))
        assert {f["type"] for f in frames} == {"pong"}
        async with httpx.AsyncClient(base_url=gw.url, headers=headers) as client:
            assert (await client.get(f"/api/v1/panels/{panel}")).status_code == 404


async def test_first_frame_auth_and_bad_frames(tmp_path: Any) -> None:
    token = "events-token-0123456789abcdef"
    async with GatewayHarness(tmp_path / "home", token=token) as gw:
        async with websockets.connect(ws_url(gw)) as ws:
            await ws.send(json.dumps({"type": "auth", "token": "wrong"}))
            with pytest.raises(websockets.ConnectionClosed) as info:
                await ws.recv()
            assert info.value.rcvd is not None and info.value.rcvd.code == 4401
        async with websockets.connect(ws_url(gw)) as ws:
            await ws.send(json.dumps({"type": "auth", "token": token}))
            assert json.loads(await ws.recv()) == {"type": "auth_ok"}
            await ws.send("not json")
            error = await next_frame(ws, "error")
            assert error["code"] == "invalid_frame"
            await ready(ws)


async def test_layout_saved_is_announced(gw: GatewayHarness) -> None:
    panel = (await gw.http.post("/api/v1/panels", json={"template": "todo"})).json()["id"]
    layout = {"version": 1, "mode": "tabs", "areas": [{"id": "a", "panels": [panel]}]}
    async with websockets.connect(ws_url(gw)) as ws:
        await ready(ws)
        r = await gw.http.put("/api/v1/workspaces/default/layout", json=layout)
        assert r.status_code == 200, r.text
        assert await next_frame(ws, "layout.updated") == {
            "type": "layout.updated",
            "workspace": "default",
        }


async def test_hub_publish_reaches_only_the_owner(gw: GatewayHarness) -> None:
    """What other areas call: ``services.events.publish(owner, frame)``."""
    from nexflow.web.events import FileCommitted

    assert gw.app is not None
    hub = gw.app.web.state.services.events
    async with websockets.connect(ws_url(gw)) as ws:
        await ready(ws)  # the socket made the web owner a user
        found = await gw.app.storage.find_user("web", "owner")
        assert found is not None
        hub.publish("somebody-else", FileCommitted(workspace="default", path="x", sha="1"))
        hub.publish(found[0], FileCommitted(workspace="default", path="a.md", sha="abc"))
        frame = await next_frame(ws, "file.committed")
        assert frame == {
            "type": "file.committed",
            "workspace": "default",
            "path": "a.md",
            "sha": "abc",
        }


class Broken:
    """A listener that fails on every change."""

    async def before_create(self, owner: str, workspace: str) -> None:
        return None

    async def committed(self, record: Any, change: Any) -> None:
        raise RuntimeError("listener bug")

    async def deleted(self, record: Any) -> None:
        raise RuntimeError("listener bug")


async def test_a_failing_listener_does_not_undo_a_change(gw: GatewayHarness) -> None:
    assert gw.app is not None and gw.app.panels is not None
    assert gw.app.workspaces is not None
    await gw.app.workspaces.ready()  # the mirror attaches itself once started
    panels = gw.app.panels
    remove = panels.add_listener(Broken())
    assert panels.observer is not None  # the workspace mirror keeps its slot
    assert panels.listeners[0] is panels.observer
    try:
        panel = (await gw.http.post("/api/v1/panels", json={"template": "todo"})).json()["id"]
        r = await gw.http.post(f"/api/v1/panels/{panel}/tools/add_item", json={"text": "x"})
        assert r.json()["ok"] is True
        assert (await gw.http.delete(f"/api/v1/panels/{panel}")).status_code == 204
    finally:
        remove()
    assert all(not isinstance(x, Broken) for x in panels.listeners)
