"""The HTTP contract of docs/panels.md, through a real gateway."""

from __future__ import annotations

from typing import Any

from runtime_support import panel_with_handler

from nexflow.testing.harness import GatewayHarness


async def _create(gw: GatewayHarness, **body: Any) -> dict[str, Any]:
    resp = await gw.http.post("/api/v1/panels", json=body)
    assert resp.status_code == 201, resp.text
    data: dict[str, Any] = resp.json()
    return data


async def test_create_get_call_snapshot(gw: GatewayHarness) -> None:
    created = await _create(gw, template="server-monitor")
    assert {"id", "title", "state"} <= set(created)
    assert created["title"] == "Cluster Health"
    assert created["state"] == {"cpu_load": 0, "status": "idle", "logs": []}

    listed = (await gw.http.get("/api/v1/panels")).json()
    assert [p["id"] for p in listed] == ["server-monitor"]
    templates = (await gw.http.get("/api/v1/panel-templates")).json()
    assert {"name": "server-monitor"} in templates

    got = (await gw.http.get("/api/v1/panels/server-monitor")).json()
    assert {"id", "title", "state", "render"} <= set(got)
    metric = _node(got["render"]["root"], "Metric")
    assert metric["props"]["value"] == "0%"
    assert metric["props"]["trend"] == "up"
    assert got["binding_errors"] == []

    resp = await gw.http.post("/api/v1/panels/server-monitor/tools/restart_node", json={})
    body = resp.json()
    assert resp.status_code == 200
    assert {"ok", "state", "effects", "error"} <= set(body)
    assert body["ok"] is True
    assert body["error"] is None
    assert body["state"]["status"] == "rebooting"
    assert body["effects"] == [
        {"kind": "emit", "event": "toast", "payload": "Restart sequence initiated"}
    ]
    badge = _node(
        (await gw.http.get("/api/v1/panels/server-monitor")).json()["render"]["root"], "StatusBadge"
    )
    assert badge["props"]["value"] == "rebooting"

    snap = (await gw.http.get("/api/v1/panels/server-monitor/snapshot")).json()
    assert snap["kind"] == "panel_snapshot"
    assert "rebooting" in snap["text"]
    assert snap["buttons"] == [
        {"label": "Emergency Restart", "action": "panel:server-monitor:view/0/2"}
    ]
    pressed = (
        await gw.http.post(
            "/api/v1/panels/server-monitor/press", json={"action": snap["buttons"][0]["action"]}
        )
    ).json()
    assert pressed["outcome"]["ok"] is True
    assert "Restart sequence initiated" in pressed["snapshot"]["text"]


def _node(node: dict[str, Any], node_type: str) -> dict[str, Any]:
    if node["type"] == node_type:
        return node
    for child in node["children"]:
        found = _node(child, node_type) if isinstance(child, dict) else None
        if found:
            return found
    return {}


async def test_invalid_nxml_is_422_with_diagnostics(gw: GatewayHarness) -> None:
    xml = (
        '<NexusPanel id="x" title="X">\n  <View>\n    <Gauge value="1" />\n  </View>\n</NexusPanel>'
    )
    resp = await gw.http.post("/api/v1/panels", json={"nxml": xml})
    assert resp.status_code == 422
    body = resp.json()
    assert body["error"]["code"] == "invalid_nxml"
    first = body["diagnostics"][0]
    assert (first["line"], first["column"]) == (3, 5)
    assert "Gauge" in first["message"]
    not_xml = await gw.http.post("/api/v1/panels", json={"nxml": "<<<"})
    assert not_xml.status_code == 422
    assert not_xml.json()["diagnostics"][0]["line"] >= 1
    both = await gw.http.post("/api/v1/panels", json={"nxml": xml, "template": "todo"})
    assert both.status_code == 422
    assert (await gw.http.post("/api/v1/panels", json={"template": "nope"})).status_code == 404


async def test_errors_for_unknown_things(gw: GatewayHarness) -> None:
    await _create(gw, template="server-monitor")
    missing = await gw.http.get("/api/v1/panels/nope")
    assert missing.status_code == 404
    assert missing.json()["error"]["code"] == "unknown_panel"
    tool = await gw.http.post("/api/v1/panels/server-monitor/tools/nope", json={})
    assert tool.status_code == 404
    assert tool.json()["ok"] is False
    assert tool.json()["error"]["code"] == "unknown_tool"
    bad = await gw.http.post("/api/v1/panels/server-monitor/tools/filter_logs", json={"level": 3})
    assert bad.json()["ok"] is False
    assert bad.json()["error"]["code"] == "invalid_args"
    assert bad.json()["state"]["status"] == "idle"
    not_object = await gw.http.post("/api/v1/panels/server-monitor/tools/filter_logs", json=[1])
    assert not_object.status_code == 422


async def test_versions_and_rollback_endpoints(gw: GatewayHarness) -> None:
    await _create(gw, template="server-monitor")
    await gw.http.post("/api/v1/panels/server-monitor/tools/restart_node", json={"force": True})
    versions = (await gw.http.get("/api/v1/panels/server-monitor/versions")).json()
    assert [v["version"] for v in versions] == [2, 1]
    assert versions[0]["args"] == {"force": True}
    assert versions[0]["triggered_by"] == "user"
    assert versions[0]["state_before"]["status"] == "idle"
    assert versions[0]["state_after"]["status"] == "rebooting"
    rolled = await gw.http.post("/api/v1/panels/server-monitor/rollback", json={"version": 1})
    assert rolled.status_code == 200
    assert rolled.json()["state"]["status"] == "idle"
    assert rolled.json()["version"] == 3
    nope = await gw.http.post("/api/v1/panels/server-monitor/rollback", json={"version": 99})
    assert nope.status_code == 404


async def test_delete_removes_panel_and_tools(gw: GatewayHarness) -> None:
    created = await _create(gw, template="server-monitor")
    filter_logs = next(t for t in created["tools"] if t.endswith("__filter_logs"))
    assert gw.app is not None
    assert filter_logs in await gw.owner_tools()
    assert (await gw.http.delete("/api/v1/panels/server-monitor")).status_code == 204
    assert filter_logs not in await gw.owner_tools()
    assert (await gw.http.get("/api/v1/panels/server-monitor")).status_code == 404


async def test_preview_page_escapes_everything(gw: GatewayHarness) -> None:
    handler = "$state.status = '<script>alert(1)</script>';"
    await _create(
        gw, nxml=panel_with_handler(handler).replace('title="Hostile"', 'title="A &lt;b&gt; title"')
    )
    await gw.http.post("/api/v1/panels/hostile/tools/run", json={})
    page = await gw.http.get("/panels/hostile")
    assert page.status_code == 200
    assert page.headers["content-type"].startswith("text/html")
    assert "<script>alert(1)</script>" not in page.text
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page.text
    assert "A &lt;b&gt; title" in page.text
    assert 'data-tool="bump"' in page.text
    snap = (await gw.http.get("/api/v1/panels/hostile/snapshot")).json()
    assert "<script>" not in snap["text"]
    assert "&lt;script&gt;" in snap["text"]


async def test_grants_endpoint(gw: GatewayHarness) -> None:
    xml = """<NexusPanel id="net" title="Net">
  <Capabilities><Http host="api.example.com" /></Capabilities>
  <Data><State name="code" type="number" /></Data>
  <Logic><Tool name="fetch" description="d"><Handler>$state.code = 1;</Handler></Tool></Logic>
  <View><Metric label="Code" value="{$state.code}" /></View>
</NexusPanel>"""
    await _create(gw, nxml=xml)
    caps = (await gw.http.get("/api/v1/panels/net")).json()["capabilities"]
    assert caps == {"declared": ["http:api.example.com"], "granted": [], "effective": []}
    resp = await gw.http.post(
        "/api/v1/panels/net/grants", json={"grants": ["http:api.example.com"]}
    )
    assert resp.json()["effective"] == ["http:api.example.com"]
    bad = await gw.http.post("/api/v1/panels/net/grants", json={"grants": ["rm -rf"]})
    assert bad.status_code == 422
    assert bad.json()["error"]["code"] == "invalid_grant"
