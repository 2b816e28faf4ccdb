"""Every JSON route of the panel, pairing, skills, tasks, dead-letter, tools and webhook
modules declares its response model in ``/openapi.json`` (GraphStudio's TypeScript types
come from it), and real answers are exactly what the models say: validating a body and
dumping it again gives the same JSON, so no key is missing from a model."""

from __future__ import annotations

from typing import Any

import httpx
from fastapi.responses import HTMLResponse
from fastapi.routing import APIRoute
from pydantic import BaseModel, TypeAdapter

from nexflow.bus.events import PanelSnapshotOut
from nexflow.testing.harness import GatewayHarness
from nexflow.web import (
    routes_hooks,
    routes_pairing,
    routes_panels,
    routes_skills,
    routes_tasks,
    routes_tools,
    routes_turns,
)
from nexflow.web.models_common import ErrorBody
from nexflow.web.models_ops import (
    DeadLetterOut,
    PairingApproved,
    PairingDenied,
    PairingOut,
    PendingConfirmation,
    SkillSummary,
)
from nexflow.web.models_panels import (
    Capabilities,
    PanelDetail,
    PanelSummary,
    PanelTemplate,
    PanelVersion,
    Pressed,
    ToolOutcome,
)
from nexflow.web.routes_tasks import TaskList
from nexflow.web.routes_tools import ToolRegistryResponse

MODULES = (
    routes_hooks,
    routes_pairing,
    routes_panels,
    routes_skills,
    routes_tasks,
    routes_tools,
    routes_turns,
)


def _json_routes() -> list[tuple[str, str, str]]:
    """(method, path, success status) of every JSON route of ``MODULES``."""
    found = []
    for module in MODULES:
        for route in module.router.routes:
            assert isinstance(route, APIRoute)
            if route.response_class is HTMLResponse or route.status_code == 204:
                continue
            for method in route.methods or ():
                found.append((method.lower(), route.path, str(route.status_code or 200)))
    return found


def _resolve(schema: dict[str, Any], components: dict[str, Any]) -> dict[str, Any]:
    ref = schema.get("$ref")
    if ref is None:
        return schema
    resolved: dict[str, Any] = components[ref.rsplit("/", 1)[1]]
    return resolved


def _typed(schema: dict[str, Any], components: dict[str, Any]) -> bool:
    """A schema that says what the body holds: an object with properties, an array of
    such objects, or a union of them (never ``{}`` or a bare ``object``)."""
    schema = _resolve(schema, components)
    if "oneOf" in schema or "anyOf" in schema:
        options = schema.get("oneOf") or schema["anyOf"]
        return all(_typed(o, components) for o in options)
    if schema.get("type") == "array":
        return _typed(schema["items"], components)
    return bool(schema.get("properties"))


def _same(model: Any, body: Any) -> None:
    """``body`` validates against ``model`` and dumps back unchanged (no key dropped)."""
    adapter: TypeAdapter[Any] = TypeAdapter(model)
    assert adapter.dump_python(adapter.validate_python(body), mode="json") == body


async def test_every_json_route_declares_a_typed_response(gw: GatewayHarness) -> None:
    schema = (await gw.http.get("/openapi.json")).json()
    components = schema["components"]["schemas"]
    routes = _json_routes()
    assert len(routes) >= 20
    for method, path, status in routes:
        op = schema["paths"][path][method]
        body = op["responses"][status]["content"]["application/json"]["schema"]
        assert _typed(body, components), (method, path, body)
        for code, answer in op["responses"].items():
            if code.startswith(("4", "5")):  # errors are ErrorBody, never FastAPI's default
                error = answer["content"]["application/json"]["schema"]
                assert _typed(error, components), (method, path, code)
                assert "HTTPValidationError" not in str(error), (method, path, code)
    assert set(components["ErrorBody"]["properties"]) == {"error"}
    assert set(components["ErrorDetail"]["properties"]) == {"code", "message"}
    assert "diagnostics" in components["PanelErrorBody"]["properties"]
    assert "render" in components["PanelDetail"]["required"]


async def test_panel_answers_are_what_the_models_say(gw: GatewayHarness) -> None:
    http = gw.http
    templates = (await http.get("/api/v1/panel-templates")).json()
    _same(list[PanelTemplate], templates)
    created = await http.post("/api/v1/panels", json={"template": "todo"})
    assert created.status_code == 201, created.text
    _same(PanelSummary, created.json())
    panel = created.json()["id"]
    _same(list[PanelSummary], (await http.get("/api/v1/panels")).json())
    detail = (await http.get(f"/api/v1/panels/{panel}")).json()
    _same(PanelDetail, detail)
    assert {"view", "render", "binding_errors", "capabilities", "tools"} <= detail.keys()

    assert any(t.endswith("add_item") for t in detail["tools"])  # the names the model sees
    tool = "add_item"
    called = await http.post(f"/api/v1/panels/{panel}/tools/{tool}", json={"text": "milk"})
    assert called.status_code == 200, called.text
    _same(ToolOutcome, called.json())
    unknown = await http.post(f"/api/v1/panels/{panel}/tools/nope", json={})
    assert unknown.status_code == 404 and unknown.json()["ok"] is False
    _same(ToolOutcome, unknown.json())
    bad = await http.post(f"/api/v1/panels/{panel}/tools/{tool}", json=[1])
    assert bad.status_code == 422
    _same(ErrorBody, bad.json())

    snap = (await http.get(f"/api/v1/panels/{panel}/snapshot")).json()
    _same(PanelSnapshotOut, snap)
    if snap["buttons"]:
        pressed = await http.post(
            f"/api/v1/panels/{panel}/press", json={"action": snap["buttons"][0]["action"]}
        )
        assert pressed.status_code == 200, pressed.text
        _same(Pressed, pressed.json())
    versions = (await http.get(f"/api/v1/panels/{panel}/versions")).json()
    assert len(versions) >= 2
    _same(list[PanelVersion], versions)
    rolled = await http.post(f"/api/v1/panels/{panel}/rollback", json={"version": 1})
    assert rolled.status_code == 200, rolled.text
    _same(PanelSummary, rolled.json())
    granted = await http.post(f"/api/v1/panels/{panel}/grants", json={"grants": []})
    assert granted.status_code == 200, granted.text
    _same(Capabilities, granted.json())
    missing = await http.get("/api/v1/panels/nope")
    assert missing.status_code == 404
    _same(ErrorBody, missing.json())


async def test_ops_answers_are_what_the_models_say(
    gw: GatewayHarness, carol: httpx.AsyncClient
) -> None:
    http = gw.http
    cases: list[tuple[str, type[BaseModel] | Any]] = [
        ("/api/v1/skills", list[SkillSummary]),
        ("/api/v1/confirmations", list[PendingConfirmation]),
        ("/api/v1/dead-letters", list[DeadLetterOut]),
        ("/api/v1/tasks", TaskList),
        ("/api/v1/tools", ToolRegistryResponse),
    ]
    for path, model in cases:
        resp = await http.get(path)
        assert resp.status_code == 200, (path, resp.text)
        _same(model, resp.json())
    assert (await http.get("/api/v1/skills")).json()  # the bundled skills
    forbidden = await carol.get("/api/v1/dead-letters?all=true")
    assert forbidden.status_code == 403
    _same(ErrorBody, forbidden.json())
    unknown = await http.post("/api/v1/pairing/telegram/ABCD/approve")
    assert unknown.status_code == 404
    _same(ErrorBody, unknown.json())
    answered = await http.post("/api/v1/confirmations/nope", json={"approve": True})
    assert answered.status_code == 404 and answered.json() == {"outcome": "unknown"}


async def test_pairing_answers_are_what_the_models_say(gw: GatewayHarness) -> None:
    assert gw.app is not None
    storage = gw.app.storage
    for sender in ("ann", "bob"):
        await storage.pairing_request("telegram", sender, sender, sender.title(), "en", 600)
    listed = (await gw.http.get("/api/v1/pairing")).json()
    assert len(listed) == 2
    _same(list[PairingOut], listed)
    approved = await gw.http.post(f"/api/v1/pairing/telegram/{listed[0]['code']}/approve")
    assert approved.status_code == 200, approved.text
    assert approved.json()["status"] == "approved" and approved.json()["user_id"]
    _same(PairingApproved, approved.json())
    denied = await gw.http.post(f"/api/v1/pairing/telegram/{listed[1]['code']}/deny")
    assert denied.status_code == 200, denied.text
    assert denied.json()["status"] == "denied" and "user_id" not in denied.json()
    _same(PairingDenied, denied.json())
