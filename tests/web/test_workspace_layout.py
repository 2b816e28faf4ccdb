"""Workspaces and their layout: listed, created, laid out, saved in git (versioned),
validated, and private to their owner."""

from __future__ import annotations

import subprocess
from typing import Any

import httpx

from nexflow.testing.harness import GatewayHarness


def layout(*areas: tuple[str, list[str]], mode: str = "tile") -> dict[str, Any]:
    return {
        "version": 1,
        "mode": mode,
        "areas": [
            {"id": i, "panels": p, "active": p[0] if p else None, "size": 1 / len(areas)}
            for i, p in areas
        ],
    }


async def new_panel(gw: GatewayHarness, template: str, workspace: str | None = None) -> str:
    body = {"template": template, **({"workspace": workspace} if workspace else {})}
    r = await gw.http.post("/api/v1/panels", json=body)
    assert r.status_code == 201, r.text
    return str(r.json()["id"])


def git_log(gw: GatewayHarness, workspace: str) -> str:
    assert gw.app is not None and gw.app.workspaces is not None
    roots = list((gw.home).rglob(f"{workspace}/.git"))
    assert roots, "the workspace repository exists"
    return subprocess.run(
        ["git", "-C", str(roots[0].parent), "log", "--format=%s", "--", ".nexflow/layout.json"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout


async def test_workspaces_listed_and_created(gw: GatewayHarness) -> None:
    await new_panel(gw, "todo")
    listed = (await gw.http.get("/api/v1/workspaces")).json()
    assert listed == [{"name": "default", "default": True, "panels": 1}]
    r = await gw.http.post("/api/v1/workspaces", json={"name": "research"})
    assert r.status_code == 201
    assert r.json() == {"name": "research", "default": False, "panels": 0}
    names = [w["name"] for w in (await gw.http.get("/api/v1/workspaces")).json()]
    assert names == ["default", "research"]
    again = await gw.http.post("/api/v1/workspaces", json={"name": "research"})
    assert again.status_code == 409 and again.json()["error"]["code"] == "exists"
    bad = await gw.http.post("/api/v1/workspaces", json={"name": "Not OK!"})
    assert bad.status_code == 422 and "workspace name" in bad.json()["error"]["message"]


async def test_default_layout_then_saved_and_committed(gw: GatewayHarness) -> None:
    todo = await new_panel(gw, "todo")
    notes = await new_panel(gw, "notes")
    got = (await gw.http.get("/api/v1/workspaces/default/layout")).json()
    assert got["areas"] == [{"id": "main", "panels": [todo, notes], "active": todo, "size": 1.0}]
    wanted = layout(("left", [todo]), ("right", [notes]), mode="tabs")
    r = await gw.http.put("/api/v1/workspaces/default/layout", json=wanted)
    assert r.status_code == 200, r.text
    assert (await gw.http.get("/api/v1/workspaces/default/layout")).json() == wanted
    assert "layout.json" in git_log(gw, "default")
    # an unchanged layout makes no new commit
    await gw.http.put("/api/v1/workspaces/default/layout", json=wanted)
    assert len(git_log(gw, "default").splitlines()) == 1
    # a deleted panel drops out of the saved layout
    await gw.http.delete(f"/api/v1/panels/{notes}")
    after = (await gw.http.get("/api/v1/workspaces/default/layout")).json()
    assert after["areas"][1] == {"id": "right", "panels": [], "active": None, "size": 0.5}


async def test_layout_refuses_unknown_panels_and_bad_shapes(gw: GatewayHarness) -> None:
    todo = await new_panel(gw, "todo")
    r = await gw.http.put("/api/v1/workspaces/default/layout", json=layout(("a", [todo, "nope"])))
    assert r.status_code == 422
    assert r.json()["error"]["code"] == "unknown_panel"
    assert "'nope'" in r.json()["error"]["message"]
    twice = await gw.http.put(
        "/api/v1/workspaces/default/layout", json=layout(("a", [todo]), ("b", [todo]))
    )
    assert twice.status_code == 422 and "more than one place" in twice.text
    tiny = layout(("a", [todo]))
    tiny["areas"][0]["size"] = 0.01
    assert (await gw.http.put("/api/v1/workspaces/default/layout", json=tiny)).status_code == 422
    missing = await gw.http.get("/api/v1/workspaces/nowhere/layout")
    assert missing.status_code == 404


async def test_panels_of_another_workspace_are_not_laid_out_here(gw: GatewayHarness) -> None:
    await gw.http.post("/api/v1/workspaces", json={"name": "lab"})
    lab_panel = await new_panel(gw, "todo", "lab")
    here = (await gw.http.get("/api/v1/workspaces/default/layout")).json()
    assert here["areas"][0]["panels"] == []
    r = await gw.http.put("/api/v1/workspaces/default/layout", json=layout(("a", [lab_panel])))
    assert r.status_code == 422
    ok = await gw.http.put("/api/v1/workspaces/lab/layout", json=layout(("a", [lab_panel])))
    assert ok.status_code == 200


async def test_another_users_workspace_is_missing(
    gw: GatewayHarness, carol: httpx.AsyncClient
) -> None:
    await gw.http.post("/api/v1/workspaces", json={"name": "secret"})
    todo = await new_panel(gw, "todo", "secret")
    assert (await carol.get("/api/v1/workspaces/secret/layout")).status_code == 404
    r = await carol.put("/api/v1/workspaces/secret/layout", json=layout(("a", [todo])))
    assert r.status_code == 404
    names = [w["name"] for w in (await carol.get("/api/v1/workspaces")).json()]
    assert names == ["default"]
