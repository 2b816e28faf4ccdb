"""Every JSON route of the gateway declares a typed answer in ``/openapi.json`` (GraphStudio's
TypeScript types come from it), and the chat, session, status, health and patch routes
answer exactly what their models say: a real body validated and dumped again (with the
routes' own ``exclude_unset``) is the same JSON, so no key is missing from a model and no
key appears on the wire that was not there before."""

from __future__ import annotations

import json
from typing import Any

import pytest
from pydantic import BaseModel, TypeAdapter

from nexflow.bus.events import ConfirmationOut, TextOut
from nexflow.testing.fake_llm import Reply
from nexflow.testing.harness import GatewayHarness
from nexflow.web.models_chat import ChatReply, GatewayStatus, Health, Readiness, SessionDetail
from nexflow.web.models_common import ErrorBody
from nexflow.web.models_patches import (
    PanelCommit,
    PatchDiffOut,
    PatchOut,
    SyncResult,
    WorkspaceErrorBody,
)

UNTYPED = {"/metrics", "/api/v1/metrics"}  # Prometheus text
MINE = {
    ("post", "/api/v1/chat"): "ChatReply",
    ("get", "/api/v1/sessions/{session_id}"): "SessionDetail",
    ("get", "/api/v1/status"): "GatewayStatus",
    ("get", "/health"): "Health",
    ("get", "/ready"): "Readiness",
    ("get", "/api/v1/patches"): "PatchOut",
    ("get", "/api/v1/patches/{patch_id}"): "PatchDiffOut",
    ("post", "/api/v1/patches/{patch_id}/accept"): "PatchOut",
    ("post", "/api/v1/patches/{patch_id}/reject"): "PatchOut",
    ("post", "/api/v1/panels/{panel_id}/sync"): "SyncResult",
    ("get", "/api/v1/panels/{panel_id}/history"): "PanelCommit",
    ("post", "/api/v1/panels/{panel_id}/restore"): "PanelCommit",
}


def _resolve(schema: dict[str, Any], components: dict[str, Any]) -> dict[str, Any]:
    ref = schema.get("$ref")
    if ref is None:
        return schema
    resolved: dict[str, Any] = components[ref.rsplit("/", 1)[1]]
    return resolved


def _typed(schema: dict[str, Any], components: dict[str, Any]) -> bool:
    """An object with properties, an array of such, or a union of them (never ``{}``)."""
    schema = _resolve(schema, components)
    if "oneOf" in schema or "anyOf" in schema:
        return all(_typed(o, components) for o in schema.get("oneOf") or schema["anyOf"])
    if schema.get("type") == "array":
        return _typed(schema["items"], components)
    return bool(schema.get("properties"))


def _same(model: Any, body: Any) -> None:
    """``body`` validates against ``model`` and dumps back unchanged, as the route does."""
    adapter: TypeAdapter[Any] = TypeAdapter(model)
    dumped = adapter.dump_python(adapter.validate_python(body), mode="json", exclude_unset=True)
    assert dumped == body


async def test_every_json_route_declares_a_typed_answer(gateway: GatewayHarness) -> None:
    schema = (await gateway.http.get("/openapi.json")).json()
    components = schema["components"]["schemas"]
    checked = 0
    for path, operations in schema["paths"].items():
        for method, op in operations.items():
            for code, answer in op["responses"].items():
                body = answer.get("content", {}).get("application/json")
                if body is None:
                    continue  # 204, HTML pages
                if code.startswith("2") and path not in UNTYPED:
                    assert _typed(body["schema"], components), (method, path, code, body)
                    checked += 1
                if code.startswith(("4", "5")) and (method, path) in MINE:
                    assert _typed(body["schema"], components), (method, path, code)
                    assert "HTTPValidationError" not in str(body), (method, path, code)
    assert checked >= 60
    for (method, path), name in MINE.items():
        ok = schema["paths"][path][method]["responses"]["200"]["content"]["application/json"]
        assert name in json.dumps(ok["schema"]), (method, path)
    ready = schema["paths"]["/ready"]["get"]["responses"]["503"]["content"]
    assert "Readiness" in json.dumps(ready)
    chat = schema["paths"]["/api/v1/chat"]["post"]
    assert "ChatReply" in json.dumps(chat["responses"]["202"])
    assert "ChatRequest" in json.dumps(chat["requestBody"]) or "message" in json.dumps(
        chat["requestBody"]
    )
    card = components["CardItem"]["properties"]["outbound"]
    assert {"TextOut", "PanelSnapshotOut", "ConfirmationOut", "PatchReviewOut"} <= {
        ref.rsplit("/", 1)[1] for ref in json.dumps(card).split('"') if ref.startswith("#/")
    }
    assert "FileOut" in components  # the files route's own FileOut keeps its name


async def test_chat_session_status_health_are_what_the_models_say(
    gateway: GatewayHarness, monkeypatch: pytest.MonkeyPatch
) -> None:
    http = gateway.http
    first = await http.post("/api/v1/chat", json={"message": "what time is it?"})
    assert first.status_code == 200 and "Server-Timing" in first.headers
    body = first.json()
    _same(ChatReply, body)
    assert body["status"] == "done" and body["tool_calls"] and "error" not in body
    session = body["session"]
    panel = await http.post(
        "/api/v1/chat", json={"message": "/panel new notes", "session": session}
    )
    _same(ChatReply, panel.json())
    await gateway.chat("/panel new todo", session=session)
    await http.post("/api/v1/panels/todo/tools/add_item", json={"text": "buy milk"})
    change = {"target": "panel:notes", "summary": "Add milk", "append": {"notes": [{"title": "m"}]}}
    gateway.llm.push(Reply(text=json.dumps({"changes": [change]})))
    await gateway.chat("/sync todo", session=session)
    assert gateway.app is not None
    await gateway.app.outbox.post(
        TextOut(channel="web", chat_id=session, session_id=session, text="⏰ Reminder")
    )
    await gateway.app.outbox.post(
        ConfirmationOut(
            channel="web",
            chat_id=session,
            session_id=session,
            confirmation_id="c1",
            title="Run?",
            detail="$ echo",
            expires_at=4e9,
        )
    )

    detail = await http.get(f"/api/v1/sessions/{session}")
    assert detail.status_code == 200
    data = detail.json()
    _same(SessionDetail, data)
    items = data["timeline"]
    kinds = {i["kind"] for i in items}
    assert {"user", "assistant", "tool_call", "tool_result", "card"} <= kinds
    outs = {i["outbound"]["kind"] for i in items if i["kind"] == "card"}
    assert {"panel_snapshot", "patch_review", "confirmation", "text"} <= outs
    # optional keys are absent, never null, when an item lacks them
    assert all("pending" not in i for i in items if i["kind"] == "user")
    for item in items:
        if item["kind"] == "card":
            assert "session_id" in item["outbound"] and "reply_to" in item["outbound"]
    assert not any(v is None for i in items for k, v in i.items() if k != "outbound")
    for message in data["messages"]:
        assert message.get("tool_calls", 1) and message.get("name", 1)  # absent when empty

    missing = await http.get("/api/v1/sessions/nope")
    assert missing.status_code == 404
    _same(ErrorBody, missing.json())

    status = (await http.get("/api/v1/status")).json()
    _same(GatewayStatus, status)
    assert set(status) == {"version", "model", "queue_depth", "auth", "caller", "language"}
    health = (await http.get("/health")).json()
    _same(Health, health)
    assert health["status"] == "ok"
    ready = await http.get("/ready")
    assert ready.status_code == 200 and ready.json() == {"status": "ready"}
    _same(Readiness, ready.json())

    async def down() -> bool:
        return False

    monkeypatch.setattr(gateway.app.storage, "ping", down)
    unready = await http.get("/ready")
    assert unready.status_code == 503 and unready.json() == {"status": "storage unavailable"}


async def test_patch_routes_are_what_the_models_say(gateway: GatewayHarness) -> None:
    http = gateway.http
    await gateway.chat("/panel new todo")
    await gateway.chat("/panel new notes")
    await http.post("/api/v1/panels/todo/tools/add_item", json={"text": "call Bob"})
    change = {"target": "panel:notes", "summary": "Note", "append": {"notes": [{"title": "x"}]}}
    gateway.llm.push(Reply(text=json.dumps({"changes": [change]})))
    synced = await http.post("/api/v1/panels/todo/sync")
    assert synced.status_code == 200, synced.text
    _same(SyncResult, synced.json())
    (made,) = synced.json()["patches"]
    assert gateway.app is not None and gateway.app.workspaces is not None
    workspaces = gateway.app.workspaces
    listed = await http.get("/api/v1/patches")
    _same(list[PatchOut], listed.json())
    diff = await http.get(f"/api/v1/patches/{made['id']}")
    _same(PatchDiffOut, diff.json())
    built = (await workspaces.diff(made["id"])).to_json()
    assert diff.json() == built and list(diff.json()) == list(built)  # same keys, same order
    accepted = await http.post(f"/api/v1/patches/{made['id']}/accept")
    assert accepted.status_code == 200
    _same(PatchOut, accepted.json())
    assert list(accepted.json()) == list(built)[: len(accepted.json())]
    again = await http.post(f"/api/v1/patches/{made['id']}/reject")
    assert again.status_code == 409
    _same(WorkspaceErrorBody, again.json())

    gateway.llm.push(Reply(text=json.dumps({"changes": [change]})))
    (other,) = (await http.post("/api/v1/panels/todo/sync")).json()["patches"]
    rejected = await http.post(f"/api/v1/patches/{other['id']}/reject")
    assert rejected.status_code == 200 and rejected.json()["status"] == "rejected"
    _same(PatchOut, rejected.json())

    history = await http.get("/api/v1/panels/notes/history")
    assert history.status_code == 200 and len(history.json()) >= 2
    _same(list[PanelCommit], history.json())
    assert set(history.json()[0]) == {"sha", "message", "author", "at"}
    restored = await http.post(
        "/api/v1/panels/notes/restore", json={"sha": history.json()[-1]["sha"]}
    )
    assert restored.status_code == 200, restored.text
    _same(PanelCommit, restored.json())
    unknown = await http.get("/api/v1/patches/nope")
    assert unknown.status_code == 404
    _same(WorkspaceErrorBody, unknown.json())
    bad = await http.get("/api/v1/patches", params={"status": "nope"})
    assert bad.status_code == 422
    _same(ErrorBody, bad.json())


def test_models_are_pydantic() -> None:
    for model in (ChatReply, SessionDetail, GatewayStatus, Health, Readiness, PatchOut):
        assert issubclass(model, BaseModel)
