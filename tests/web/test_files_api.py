"""GraphStudio's file API against the real gateway and git workspaces
(nexflow/web/routes_files.py): tree, read, write with its commit in the history, the
stale 409, restore, and the refusals (traversal, panel files, binary, another user)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from web_users import as_carol, gateway_with_carol

from nexflow.testing.harness import GatewayHarness

FILES = "/api/v1/workspaces/default/files"


@pytest.fixture
async def gw(tmp_path: Path) -> AsyncIterator[GatewayHarness]:
    async with gateway_with_carol(tmp_path) as harness:
        yield harness


def error(resp: Any) -> tuple[int, str]:
    return resp.status_code, resp.json()["error"]["code"]


async def test_write_read_tree_history_stale_restore(gw: GatewayHarness) -> None:
    made = await gw.http.put(f"{FILES}/notes/plan.md", json={"content": "# Plan\n"})
    assert made.status_code == 200, made.text
    first = made.json()
    assert set(first) == {"sha", "message", "author", "at", "by_you"} and first["by_you"]
    got = (await gw.http.get(f"{FILES}/notes/plan.md")).json()
    assert got == {
        "path": "notes/plan.md",
        "content": "# Plan\n",
        "sha": first["sha"],
        "language": "markdown",
    }
    tree = (await gw.http.get("/api/v1/workspaces/default/tree")).json()
    assert {"path": "notes", "kind": "dir", "size": 0} in tree
    assert {"path": "notes/plan.md", "kind": "file", "size": 7} in tree
    assert not any(e["path"].startswith(".git") for e in tree)

    body = {"content": "# Plan\n- milk\n", "message": "Add milk", "base_sha": first["sha"]}
    second = (await gw.http.put(f"{FILES}/notes/plan.md", json=body)).json()
    assert second["message"] == "Add milk"
    history = (await gw.http.get(f"{FILES}/notes/plan.md/history")).json()
    assert [c["sha"] for c in history] == [second["sha"], first["sha"]]

    stale = await gw.http.put(
        f"{FILES}/notes/plan.md", json={"content": "lost", "base_sha": first["sha"]}
    )
    assert error(stale) == (409, "stale")
    assert "changed since" in stale.json()["error"]["message"]

    restored = await gw.http.post(f"{FILES}/notes/plan.md/restore", json={"sha": first["sha"]})
    assert restored.status_code == 200
    assert (await gw.http.get(f"{FILES}/notes/plan.md")).json()["content"] == "# Plan\n"
    history = (await gw.http.get(f"{FILES}/notes/plan.md/history")).json()
    assert history[0]["sha"] == restored.json()["sha"] and len(history) == 3
    unknown = await gw.http.post(f"{FILES}/notes/plan.md/restore", json={"sha": "0" * 40})
    assert error(unknown) == (404, "not_found")
    assert error(await gw.http.post(f"{FILES}/notes/plan.md/restore", json={"sha": "xyz"})) == (
        422,
        "invalid_request",
    )

    code = await gw.http.put(f"{FILES}/src/app.py", json={"content": "print('hi')\n"})
    assert code.status_code == 200
    assert (await gw.http.get(f"{FILES}/src/app.py")).json()["language"] == "python"


async def test_refusals(gw: GatewayHarness) -> None:
    for bad in ("%2e%2e/etc/passwd", "a/%2e%2e/%2e%2e/x", "%2Fetc%2Fpasswd", ".git/config"):
        resp = await gw.http.get(f"{FILES}/{bad}")
        assert error(resp) == (422, "invalid_path"), bad
        put = await gw.http.put(f"{FILES}/{bad}", json={"content": "x"})
        assert error(put) == (422, "invalid_path"), bad
    assert error(await gw.http.get(f"{FILES}/missing.md")) == (404, "not_found")
    for ws in ("nope", "%2e%2e", "Bad%20Name"):
        assert error(await gw.http.get(f"/api/v1/workspaces/{ws}/tree")) == (404, "not_found")

    await gw.chat("/panel new todo")
    nxml = await gw.http.get(f"{FILES}/panels/todo.nxml")
    assert nxml.status_code == 200 and "<" in nxml.json()["content"]
    panel = await gw.http.put(f"{FILES}/panels/todo.state.json", json={"content": "{}"})
    assert error(panel) == (422, "panel_file")
    assert "tools" in panel.json()["error"]["message"]

    await gw.http.put(f"{FILES}/blob.bin", json={"content": "a\u0000b"})
    assert error(await gw.http.get(f"{FILES}/blob.bin")) == (415, "binary")


async def test_another_users_workspace_is_404(gw: GatewayHarness) -> None:
    await gw.http.put(f"{FILES}/secret.md", json={"content": "owner's"})
    owner = await gw.app.storage.find_user("web", "owner") if gw.app else None
    assert owner is not None
    async with as_carol(gw) as carol:
        mine = (await carol.get("/api/v1/workspaces/default/tree")).json()
        assert "secret.md" not in {e["path"] for e in mine}
        assert error(await carol.get(f"{FILES}/secret.md")) == (404, "not_found")
        params = {"owner": owner[0]}
        theirs = await carol.get(f"{FILES}/secret.md", params=params)
        assert error(theirs) == (404, "not_found")
        put = await carol.put(f"{FILES}/secret.md", params=params, json={"content": "x"})
        assert error(put) == (404, "not_found")
        hist = await carol.get(f"{FILES}/secret.md/history", params=params)
        assert error(hist) == (404, "not_found")
    assert (await gw.http.get(f"{FILES}/secret.md")).json()["content"] == "owner's"


async def test_delete_then_restore(gw: GatewayHarness) -> None:
    first = (await gw.http.put(f"{FILES}/old.txt", json={"content": "keep me"})).json()
    await gw.http.put(f"{FILES}/old.txt", json={"content": "newer"})
    stale = await gw.http.delete(f"{FILES}/old.txt", params={"base_sha": first["sha"]})
    assert error(stale) == (409, "stale")
    gone = await gw.http.delete(f"{FILES}/old.txt")
    assert gone.status_code == 200 and gone.json()["message"] == "Delete old.txt"
    assert error(await gw.http.get(f"{FILES}/old.txt")) == (404, "not_found")
    assert error(await gw.http.delete(f"{FILES}/old.txt")) == (404, "not_found")
    history = (await gw.http.get(f"{FILES}/old.txt/history")).json()
    assert history[0]["sha"] == gone.json()["sha"] and len(history) == 3
    back = await gw.http.post(f"{FILES}/old.txt/restore", json={"sha": first["sha"]})
    assert back.status_code == 200
    assert (await gw.http.get(f"{FILES}/old.txt")).json()["content"] == "keep me"
    panel = await gw.http.delete(f"{FILES}/panels/x.nxml")
    assert error(panel) == (422, "panel_file")
