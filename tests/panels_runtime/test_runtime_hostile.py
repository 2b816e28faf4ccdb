"""Hostile handlers through the HTTP API: each is stopped with a clear error, the
state is unchanged, and the gateway keeps serving."""

from __future__ import annotations

import pytest
from runtime_support import panel_with_handler

from nexflow.testing.harness import GatewayHarness

HOSTILE = {
    "infinite loop": ("while (true) {}", "handler_failed", "fuel"),
    "memory bomb": (
        "try { const k = []; for (;;) k.push(new ArrayBuffer(1 << 20)); } catch (e) {}",
        "handler_failed",
        "memory",
    ),
    "deep recursion": (
        "function f(n) { return f(n + 1) + 1; } $state.count = f(0);",
        "handler_failed",
        "RangeError",
    ),
    "read a file": ("$state.status = $fs.read('/etc/passwd');", "handler_failed", "not granted"),
    "network": (
        "$state.status = $http.get('http://example.com/').text;",
        "handler_failed",
        "not granted",
    ),
    "network, error swallowed": (
        "try { $http.get('http://127.0.0.1:1/'); } catch (e) {} $state.count = 1;",
        "handler_failed",
        "not granted",
    ),
    "environment": ("$state.status = String(process.env.HOME);", "handler_failed", "process"),
    "std module": ("$state.status = std.getenv('HOME');", "handler_failed", "std"),
    "unknown state key": (
        "$state.count = 1; $state['ex' + 'tra'] = true;",
        "state_rejected",
        "$state.extra is not declared",
    ),
    "wrong type": ("$state.count = 'many';", "state_rejected", "must be a number"),
    "deletes a key": ("delete $state.status;", "state_rejected", "was deleted"),
    "throws midway": (
        "$state.count = 99; $emit('toast', 'half done'); throw new Error('midway');",
        "handler_failed",
        "Error: midway",
    ),
    "bad view effect": ("$view.setFilter('nowhere', 'x');", "view_effect_rejected", "nowhere"),
}


@pytest.mark.slow
async def test_hostile_handlers_change_nothing(gw: GatewayHarness) -> None:
    for n, (name, (handler, code, needle)) in enumerate(HOSTILE.items()):
        panel_id = f"hostile-{n}"
        xml = panel_with_handler(handler, panel_id=panel_id)
        created = await gw.http.post("/api/v1/panels", json={"nxml": xml})
        assert created.status_code == 201, (name, created.text)
        resp = await gw.http.post(f"/api/v1/panels/{panel_id}/tools/run", json={})
        assert resp.status_code == 200, name
        body = resp.json()
        assert body["ok"] is False, name
        assert body["error"]["code"] == code, (name, body["error"])
        assert needle in body["error"]["message"], (name, body["error"])
        assert body["state"] == {"count": 0, "status": "ok"}, name
        assert body["effects"] == [], name
        after = (await gw.http.get(f"/api/v1/panels/{panel_id}")).json()
        assert after["state"] == {"count": 0, "status": "ok"}, name
        assert after["version"] == 1, name
        versions = (await gw.http.get(f"/api/v1/panels/{panel_id}/versions")).json()
        assert len(versions) == 1, name
        # the same instance still works afterwards
        bump = (await gw.http.post(f"/api/v1/panels/{panel_id}/tools/bump", json={})).json()
        assert bump["ok"] is True, name
        assert bump["state"]["count"] == 1, name

    assert (await gw.http.get("/health")).json()["status"] == "ok"
    assert (await gw.chat("still there?"))["reply"] == "Echo: still there?"
