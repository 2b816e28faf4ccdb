"""Panels in a named workspace through the real gateway: ``/panel new <template> in
<workspace>`` in chat and ``{"workspace": ...}`` over HTTP, then a press, ``/sync``,
``/accept``, ``/history`` and ``/restore``, all in ``<home>/workspaces/<user>/research``.
The fake LLM answers the sync."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import Any

import pytest
from ws_support import on_main

from nexflow.bus.events import PanelSnapshotOut, PatchReviewOut
from nexflow.testing.fake_llm import Reply
from nexflow.testing.harness import GatewayHarness
from nexflow.workspace.service import WorkspaceService

NOTE = {"title": "buy milk", "body": "from the research to-do list"}


def git_out(path: Path, *args: str) -> str:
    out = subprocess.run(["git", *args], cwd=path, capture_output=True, text=True, check=True)
    return out.stdout


async def setup(gw: GatewayHarness) -> tuple[WorkspaceService, str]:
    assert gw.app is not None and gw.app.workspaces is not None
    found = await gw.app.storage.find_user("web", "owner")
    assert found is not None
    service = await gw.app.workspaces.service()
    await service.ready()
    return service, found[0]


async def outbound(gw: GatewayHarness, reply: dict[str, Any]) -> Any:
    assert gw.app is not None
    done = await gw.app.storage.outbox_for_inbox(reply["message_id"])
    assert done is not None
    return done.outbound


async def test_chat_and_http_panels_live_in_research(  # noqa: PLR0915 (one story, in order)
    gateway: GatewayHarness,
) -> None:
    gw = gateway
    opened = await gw.chat("/panel new todo in research")
    assert opened["reply"].startswith("[panel todo]")
    created = await gw.http.post(
        "/api/v1/panels", json={"template": "notes", "workspace": "research"}
    )
    assert created.status_code == 201 and created.json()["workspace"] == "research"
    assert (await gw.chat("/panel new dashboard"))["reply"].startswith("[panel dashboard]")

    listed = (await gw.http.get("/api/v1/panels")).json()
    assert {p["id"]: p["workspace"] for p in listed} == {
        "todo": "research",
        "notes": "research",
        "dashboard": "default",
    }
    listing = (await gw.chat("/panels"))["reply"]
    assert "- todo: To-do (version 1, workspace research)" in listing
    assert "(version 1, workspace default)" in listing

    service, user = await setup(gw)
    await service.mirror.flush()
    research = gw.home / "workspaces" / user / "research"
    default = gw.home / "workspaces" / user / "default"
    assert service.workspace_path(user, "research") == research
    assert {"panels/todo.nxml", "panels/todo.state.json", "panels/notes.nxml"} <= on_main(research)
    assert not any(p.startswith("panels/dashboard") for p in on_main(research))
    assert "panels/dashboard.nxml" in on_main(default)
    assert not any(p.startswith(("panels/todo", "panels/notes")) for p in on_main(default))

    # Tool calls and a button pressed in chat are mirrored into research.
    calls = (("add_item", {"text": "buy milk"}), ("add_item", {"text": "x"}))
    for tool, args in (*calls, ("toggle_item", {"index": 1})):
        called = await gw.http.post(f"/api/v1/panels/todo/tools/{tool}", json=args)
        assert called.json()["ok"] is True
    await service.mirror.flush()
    state = json.loads(git_out(research, "show", "main:panels/todo.state.json"))
    assert state["items"][1] == {"done": True, "text": "x"}
    snap = (await gw.http.get("/api/v1/panels/todo/snapshot")).json()
    clear = next(b["action"] for b in snap["buttons"] if b["label"] == "Clear finished")
    default_head = git_out(default, "rev-parse", "main")
    pressed = await gw.chat(f"/press {clear}")
    assert isinstance(await outbound(gw, pressed), PanelSnapshotOut)
    await service.mirror.flush()
    assert (
        git_out(research, "log", "-1", "--format=%s", "main") == f"todo: clear_done() by {user}\n"
    )
    state = json.loads(git_out(research, "show", "main:panels/todo.state.json"))
    assert state == {"items": [{"done": False, "text": "buy milk"}]}
    assert git_out(default, "rev-parse", "main") == default_head

    # /sync from todo sees research only and proposes for research only.
    change = {"target": "panel:notes", "summary": "Note: buy milk", "append": {"notes": [NOTE]}}
    gw.llm.push(Reply(text=json.dumps({"changes": [change]})))
    synced = await gw.chat("/sync todo")
    assert synced["reply"].startswith("Sync from todo: 1 patch(es) to review.")
    review = await outbound(gw, synced)
    assert isinstance(review, PatchReviewOut)
    prompt = gw.llm.requests[-1]["messages"][-1]["content"]
    assert prompt.startswith(f"NOG {user}/research: 2 panels") and "dashboard" not in prompt
    patch = (await gw.http.get(f"/api/v1/patches/{review.patch_id}")).json()
    assert patch["workspace"] == f"{user}/research" and patch["target"] == "panel:notes"
    assert f"nexflow/patch/{review.patch_id}" in git_out(research, "branch", "--list")
    assert "nexflow/patch/" not in git_out(default, "branch", "--list")

    accepted = await gw.chat(f"/accept {review.patch_id}")
    assert accepted["reply"].startswith(f"Patch {review.patch_id} accepted: merged into main")
    merged = (await gw.http.get(f"/api/v1/patches/{review.patch_id}")).json()
    assert git_out(research, "rev-parse", "main").strip() == merged["merge_commit"]
    assert "buy milk" in git_out(research, "show", "main:panels/notes.state.json")
    assert (await gw.http.get("/api/v1/panels/notes")).json()["state"]["notes"] == [NOTE]
    assert git_out(default, "rev-parse", "main") == default_head

    # /history and /restore of a research panel.
    history = (await gw.chat("/history notes"))["reply"]
    assert f"Accept patch {review.patch_id}: Note: buy milk" in history
    # the oldest commit of the panel's files in research: its creation, empty notes
    oldest = git_out(research, "rev-list", "--reverse", "main", "--", "panels/notes.nxml").split()[
        0
    ]
    restored = await gw.chat(f"/restore notes {oldest[:10]}")
    assert restored["reply"].startswith(f"notes is back at {oldest[:10]}")
    assert (await gw.http.get("/api/v1/panels/notes")).json()["state"]["notes"] == []
    subject = git_out(research, "log", "-1", "--format=%s", "main")
    assert subject.startswith(f"Restore panel notes to {oldest[:10]}")
    api_history = (await gw.http.get("/api/v1/panels/notes/history")).json()
    assert api_history[0]["message"].startswith(f"Restore panel notes to {oldest[:10]}")
    assert git_out(default, "rev-parse", "main") == default_head


@pytest.mark.parametrize("bad", ["Research", "../etc", "-x"])
async def test_an_invalid_workspace_name_is_refused_and_creates_nothing(
    gateway: GatewayHarness, bad: str
) -> None:
    gw = gateway
    refused = await gw.chat(f"/panel new todo in {bad}")
    assert refused["reply"].startswith(f"Panel error: {bad!r} is not a workspace name")
    resp = await gw.http.post("/api/v1/panels", json={"template": "todo", "workspace": bad})
    assert resp.status_code == 422
    assert resp.json()["error"]["code"] == "invalid_workspace"
    assert "is not a workspace name" in resp.json()["error"]["message"]
    assert (await gw.http.get("/api/v1/panels")).json() == []
    _, user = await setup(gw)
    assert not (gw.home / "workspaces" / user).exists()
    usage = await gw.chat("/panel new todo into research")
    assert usage["reply"].startswith("Usage: /panels · /panel new <template> [in <workspace>]")


async def test_a_full_workspace_quota_is_a_clear_refusal(tmp_path: Path) -> None:
    env = {"NEXFLOW_WORKSPACES__MAX_WORKSPACES": "1"}
    async with GatewayHarness(tmp_path / "home", env=env) as gw:
        assert (await gw.chat("/panel new todo"))["reply"].startswith("[panel todo]")
        refused = await gw.chat("/panel new notes in research")
        assert refused["reply"].startswith("Panel error: ")
        assert "already has 1 workspaces" in refused["reply"]
        assert "workspaces.max_workspaces = 1" in refused["reply"]
        resp = await gw.http.post(
            "/api/v1/panels", json={"template": "notes", "workspace": "research"}
        )
        assert resp.status_code == 409 and resp.json()["error"]["code"] == "quota_exceeded"
        assert [p["id"] for p in (await gw.http.get("/api/v1/panels")).json()] == ["todo"]
        _, user = await setup(gw)
        assert not (gw.home / "workspaces" / user / "research").exists()


async def test_the_model_opens_a_panel_in_research(gateway: GatewayHarness) -> None:
    gw = gateway
    call = ("panel_open", {"template": "todo", "workspace": "research"})
    gw.llm.push(Reply(tool_calls=(call,)))
    opened = await gw.chat("open a to-do list in my research workspace")
    (result,) = opened["tool_calls"]
    assert result["ok"] and "in workspace research" in result["result"]
    service, user = await setup(gw)
    assert gw.app is not None and gw.app.panels is not None
    assert gw.app.panels.get("todo").workspace == "research"
    names = [t.spec.name for t in gw.app.panels.tools_of("todo")]
    assert names and all(n.startswith(f"{user[:8]}__research__todo__") for n in names)
    assert all(len(n) <= 64 for n in names)
    # asked again for the same workspace, the model gets the same panel back
    gw.llm.push(Reply(tool_calls=(call,)))
    await gw.chat("open it again")
    assert [r.id for r in gw.app.panels.instances()] == ["todo"]
    await service.mirror.flush()
    research = gw.home / "workspaces" / user / "research"
    assert "panels/todo.nxml" in on_main(research)
    assert not (gw.home / "workspaces" / user / "default").exists()
