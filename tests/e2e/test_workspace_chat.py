"""Explicit sync end to end through the chat: the real gateway, git workspaces and the fake
LLM. Edit the to-do panel → ``/sync todo`` → a patch for the notes panel is pending →
``/accept`` merges it (main has the merge commit, the panel shows it) or ``/reject``
drops it (main unchanged, branch gone)."""

from __future__ import annotations

import json
from typing import Any

import git
import pytest

from nexflow.bus.events import PanelSnapshotOut, PatchReviewOut
from nexflow.testing.fake_llm import Reply
from nexflow.testing.harness import GatewayHarness

NOTE = {"title": "buy milk", "body": "from the to-do list"}


def sync_answer(*changes: dict[str, Any]) -> Reply:
    """What the sync model answers (format: nexflow/workspace/sync.py)."""
    return Reply(text=json.dumps({"changes": list(changes)}))


NOTES_CHANGE = {
    "target": "panel:notes",
    "summary": "Add a note: buy milk",
    "append": {"notes": [NOTE]},
}


async def web_user(gw: GatewayHarness) -> str:
    assert gw.app is not None
    found = await gw.app.storage.find_user("web", "owner")
    assert found is not None
    return found[0]


async def repo_of(gw: GatewayHarness, user_id: str) -> git.Repo:
    assert gw.app is not None and gw.app.workspaces is not None
    service = await gw.app.workspaces.service()
    return git.Repo(service.workspace_path(user_id))


async def outbound(gw: GatewayHarness, reply: dict[str, Any]) -> Any:
    assert gw.app is not None
    done = await gw.app.storage.outbox_for_inbox(reply["message_id"])
    assert done is not None
    return done.outbound


async def edit_todo_and_sync(gw: GatewayHarness) -> tuple[str, dict[str, Any]]:
    """Open todo and notes in chat, add a to-do item, sync; the pending patch's id."""
    await gw.chat("/panel new todo")
    await gw.chat("/panel new notes")
    added = await gw.http.post("/api/v1/panels/todo/tools/add_item", json={"text": "buy milk"})
    assert added.json()["ok"] is True
    gw.llm.push(sync_answer(NOTES_CHANGE))
    synced = await gw.chat("/sync todo")
    assert synced["reply"].startswith("Sync from todo: 1 patch(es) to review.")
    review = await outbound(gw, synced)
    assert isinstance(review, PatchReviewOut)
    assert review.title == "Add a note: buy milk"
    assert "target: panel:notes (from sync:todo)" in review.summary
    assert "state keys changed: notes" in review.summary
    assert "buy milk" in review.diff and review.url.endswith(f"/patches#{review.patch_id}")
    prompt = gw.llm.requests[-1]["messages"]
    assert "buy milk" in prompt[-1]["content"]  # the sync saw the edit
    pending = (await gw.http.get("/api/v1/patches", params={"status": "pending"})).json()
    assert [(p["id"], p["target"], p["status"]) for p in pending] == [
        (review.patch_id, "panel:notes", "pending")
    ]
    return review.patch_id, synced


async def test_sync_then_accept_in_chat_merges_into_main(gateway: GatewayHarness) -> None:
    gw = gateway
    patch_id, _ = await edit_todo_and_sync(gw)
    user = await web_user(gw)
    repo = await repo_of(gw, user)
    branch = f"nexflow/patch/{patch_id}"
    assert branch in [h.name for h in repo.heads]
    before = repo.heads.main.commit.hexsha
    notes = (await gw.http.get("/api/v1/panels/notes")).json()["state"]["notes"]
    assert notes == []  # pending: the panel does not show it yet

    listing = await gw.chat("/patches")
    assert patch_id in listing["reply"] and "panel:notes" in listing["reply"]
    accepted = await gw.chat(f"/accept {patch_id}")
    assert accepted["reply"].startswith(f"Patch {patch_id} accepted: merged into main")
    card = await outbound(gw, accepted)
    assert isinstance(card, PanelSnapshotOut) and card.panel_id == "notes"
    assert "buy milk" in card.text and any(b.action == "sync:notes" for b in card.buttons)

    patch = (await gw.http.get(f"/api/v1/patches/{patch_id}")).json()
    assert patch["status"] == "merged" and patch["merge_commit"]
    main = repo.heads.main.commit
    assert main.hexsha == patch["merge_commit"]
    assert before in [p.hexsha for p in main.parents]  # a merge commit on top of main
    assert "buy milk" in (main.tree / "panels/notes.state.json").data_stream.read().decode()
    assert branch not in [h.name for h in repo.heads]
    notes = (await gw.http.get("/api/v1/panels/notes")).json()["state"]["notes"]
    assert notes == [NOTE]
    again = await gw.chat(f"/accept {patch_id}")
    assert "already merged" in again["reply"]
    assert (await gw.chat("/patches"))["reply"] == "No patches are waiting for review."


async def test_sync_then_reject_leaves_main_and_drops_the_branch(gateway: GatewayHarness) -> None:
    gw = gateway
    patch_id, _ = await edit_todo_and_sync(gw)
    repo = await repo_of(gw, await web_user(gw))
    before = repo.heads.main.commit.hexsha
    rejected = await gw.chat(f"/reject {patch_id}")
    assert rejected["reply"] == (
        f"Patch {patch_id} rejected: its branch is deleted, main is unchanged."
    )
    assert repo.heads.main.commit.hexsha == before
    assert f"nexflow/patch/{patch_id}" not in [h.name for h in repo.heads]
    assert (await gw.http.get("/api/v1/panels/notes")).json()["state"]["notes"] == []
    status = (await gw.http.get(f"/api/v1/patches/{patch_id}")).json()["status"]
    assert status == "rejected"


async def test_nothing_to_change_errors_history_and_restore(gateway: GatewayHarness) -> None:
    gw = gateway
    await gw.chat("/panel new todo")
    gw.llm.push(sync_answer())
    assert (await gw.chat("/sync todo"))["reply"] == "Sync from todo: nothing to change."
    gw.llm.push(Reply(text="I think the notes should change."))  # not JSON
    refused = await gw.chat("/sync todo")
    assert "not valid JSON" in refused["reply"] and "Traceback" not in refused["reply"]
    assert "try /sync again" in refused["reply"]
    missing = await gw.chat("/sync nope")
    assert "nope" in missing["reply"]
    assert (await gw.chat("/accept 0000"))["reply"] != ""

    first = (await gw.http.get("/api/v1/panels/todo/history")).json()
    await gw.http.post("/api/v1/panels/todo/tools/add_item", json={"text": "one"})
    history = await gw.chat("/history todo")
    assert history["reply"].startswith("History of todo, newest first")
    assert len(history["reply"].splitlines()) == len(first) + 2
    restored = await gw.chat(f"/restore todo {first[0]['sha']}")
    assert restored["reply"].startswith(f"todo is back at {first[0]['sha'][:10]}")
    assert (await gw.http.get("/api/v1/panels/todo")).json()["state"]["items"] == []


@pytest.mark.parametrize("lang", ["ru"])
async def test_help_lists_the_workspace_commands(gateway: GatewayHarness, lang: str) -> None:
    assert "/sync <panel>" in (await gateway.chat("/help"))["reply"]
    await gateway.chat(f"/lang {lang}")
    assert "/sync <панель>" in (await gateway.chat("/help"))["reply"]
