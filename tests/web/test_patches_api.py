"""The patch and panel-history HTTP API against the real gateway and git workspaces:
every route, and the 404 / 403 / 409 / 422 answers (docs/patches.md)."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from nexflow.testing.fake_llm import Reply
from nexflow.testing.harness import GatewayHarness

TOKEN = "patch-test-token"


@pytest.fixture
async def gw(tmp_path: Path) -> AsyncIterator[GatewayHarness]:
    async with GatewayHarness(tmp_path / "home", token=TOKEN) as harness:
        await harness.chat("/panel new todo")  # owned by the web user, like the API calls
        await harness.chat("/panel new notes")
        yield harness


async def propose(gw: GatewayHarness, notes: list[dict[str, str]], user: str = "") -> str:
    """A pending patch setting the notes panel's ``notes`` (through the service itself)."""
    assert gw.app is not None and gw.app.workspaces is not None
    if not user:
        found = await gw.app.storage.find_user("web", "owner")
        assert found is not None
        user = found[0]
    content = json.dumps({"state": {"notes": notes}})
    patch = await gw.app.workspaces.propose(user, "panel:notes", content, "Set notes", "api")
    return patch.id


def error(resp: Any) -> tuple[int, str]:
    return resp.status_code, resp.json()["error"]["code"]


async def test_sync_list_get_and_accept(gw: GatewayHarness) -> None:
    await gw.http.post("/api/v1/panels/todo/tools/add_item", json={"text": "call Bob"})
    note = {"title": "call Bob", "body": ""}
    change = {"target": "panel:notes", "summary": "Note: call Bob", "append": {"notes": [note]}}
    gw.llm.push(Reply(text=json.dumps({"changes": [change]})))
    synced = await gw.http.post("/api/v1/panels/todo/sync")
    assert synced.status_code == 200
    body = synced.json()
    assert body["panel"] == "todo"
    (made,) = body["patches"]
    assert {k: made[k] for k in ("status", "target", "summary", "source")} == {
        "status": "pending",
        "target": "panel:notes",
        "summary": "Note: call Bob",
        "source": "sync:todo",
    }
    listed = (await gw.http.get("/api/v1/patches", params={"status": "pending"})).json()
    assert [p["id"] for p in listed] == [made["id"]]
    assert (await gw.http.get("/api/v1/patches", params={"status": "merged"})).json() == []
    full = (await gw.http.get(f"/api/v1/patches/{made['id']}")).json()
    assert full["state_keys"] == ["notes"] and "call Bob" in full["diff"]
    assert full["nodes_added"] == [] and full["nodes_removed"] == []

    accepted = await gw.http.post(f"/api/v1/patches/{made['id']}/accept")
    assert accepted.status_code == 200
    assert accepted.json()["status"] == "merged" and accepted.json()["merge_commit"]
    state = (await gw.http.get("/api/v1/panels/notes")).json()["state"]
    assert state["notes"] == [{"title": "call Bob", "body": ""}]
    again = await gw.http.post(f"/api/v1/patches/{made['id']}/accept")
    assert error(again) == (409, "not_pending")
    assert error(await gw.http.post(f"/api/v1/patches/{made['id']}/reject")) == (
        409,
        "not_pending",
    )


async def test_reject_and_refusals(gw: GatewayHarness) -> None:
    mine = await propose(gw, [{"title": "a", "body": ""}])
    rejected = await gw.http.post(f"/api/v1/patches/{mine}/reject")
    assert rejected.status_code == 200 and rejected.json()["status"] == "rejected"
    assert error(await gw.http.post(f"/api/v1/patches/{mine}/accept")) == (409, "not_pending")

    assert error(await gw.http.get("/api/v1/patches/nope")) == (404, "not_found")
    for verb in ("accept", "reject"):
        assert error(await gw.http.post(f"/api/v1/patches/nope/{verb}")) == (404, "not_found")

    assert gw.app is not None and gw.app.panels is not None
    await gw.app.panels.delete("notes")
    await gw.app.panels.create(template="notes", owner="alice")
    theirs = await propose(gw, [{"title": "x", "body": ""}], user="alice")
    for verb in ("accept", "reject"):
        assert error(await gw.http.post(f"/api/v1/patches/{theirs}/{verb}")) == (403, "forbidden")
    assert error(await gw.http.get(f"/api/v1/patches/{theirs}")) == (403, "forbidden")
    assert theirs not in [p["id"] for p in (await gw.http.get("/api/v1/patches")).json()]
    assert error(await gw.http.post("/api/v1/panels/notes/sync")) == (403, "forbidden")
    assert error(await gw.http.post("/api/v1/panels/nope/sync")) == (404, "not_found")

    bad = await gw.http.get("/api/v1/patches", params={"status": "maybe"})
    assert error(bad) == (422, "invalid_request")


async def test_second_patch_on_the_same_key_is_a_conflict(gw: GatewayHarness) -> None:
    first = await propose(gw, [{"title": "first", "body": ""}])
    second = await propose(gw, [{"title": "second", "body": ""}])
    assert (await gw.http.post(f"/api/v1/patches/{first}/accept")).json()["status"] == "merged"
    clash = await gw.http.post(f"/api/v1/patches/{second}/accept")
    assert clash.status_code == 200
    assert clash.json()["status"] == "conflict" and "notes" in clash.json()["reason"]
    state = (await gw.http.get("/api/v1/panels/notes")).json()["state"]
    assert state["notes"] == [{"title": "first", "body": ""}]  # never silently overwritten
    listed = (await gw.http.get("/api/v1/patches", params={"status": "conflict"})).json()
    assert [p["id"] for p in listed] == [second]
    assert error(await gw.http.post(f"/api/v1/patches/{second}/accept")) == (409, "not_pending")
    rejected = await gw.http.post(f"/api/v1/patches/{second}/reject")
    assert rejected.json()["status"] == "rejected"


async def test_history_and_restore(gw: GatewayHarness) -> None:
    await gw.http.post("/api/v1/panels/todo/tools/add_item", json={"text": "one"})
    history = await gw.http.get("/api/v1/panels/todo/history")
    assert history.status_code == 200
    commits = history.json()
    assert len(commits) >= 2 and set(commits[0]) == {"sha", "message", "author", "at"}
    oldest = commits[-1]["sha"]
    restored = await gw.http.post("/api/v1/panels/todo/restore", json={"sha": oldest})
    assert restored.status_code == 200
    assert restored.json()["sha"] != oldest
    assert (await gw.http.get("/api/v1/panels/todo")).json()["state"]["items"] == []
    after = (await gw.http.get("/api/v1/panels/todo/history", params={"limit": 1})).json()
    assert [c["sha"] for c in after] == [restored.json()["sha"]]

    bad = await gw.http.post("/api/v1/panels/todo/restore", json={"sha": "not hex"})
    assert error(bad) == (422, "invalid_request")
    unknown = await gw.http.post("/api/v1/panels/todo/restore", json={"sha": "0" * 40})
    assert error(unknown) == (404, "not_found")
    assert error(await gw.http.get("/api/v1/panels/nope/history"))[0] == 404


async def test_token_and_the_review_page(gw: GatewayHarness) -> None:
    anonymous = await gw.http.get("/api/v1/patches", headers={"Authorization": ""})
    assert anonymous.status_code == 401
    page = await gw.http.get("/patches", headers={"Authorization": ""})  # public, like "/"
    assert page.status_code == 200 and "Patches" in page.text
    schema = (await gw.http.get("/openapi.json")).json()
    assert "/api/v1/patches/{patch_id}/accept" in schema["paths"]
