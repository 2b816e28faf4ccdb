"""``/api/v1/flows`` and ``/api/v1/tasks`` through the real gateway (no model, no tools):
save a flow of transform / condition / wait nodes into the caller's workspace, run it and
poll its stages until it completes; invalid YAML is a 422 with line:column; two web users
never see each other's runs; pause / resume / stop / retry / fork; the flow statistics."""

from __future__ import annotations

import asyncio
import dataclasses
import time
from pathlib import Path
from typing import Any

import httpx

from nexflow.testing.harness import GatewayHarness

GREET = """\
name: greet
description: Greets someone, with a short pause for long names
inputs:
  who: {type: string, required: true}
nodes:
  hello: {type: transform, expr: "'hello ' + inputs.who"}
  long: {type: condition, needs: [hello], if: "len(inputs.who) > 3", then: [nap], else: [short]}
  nap: {type: wait, seconds: 0.1}
  short: {type: transform, expr: "'short name'"}
  done: {type: transform, needs: [nap, short], expr: "nodes.hello.output + '!'"}
"""
SLOW = """\
name: slow
description: Waits a few seconds between two steps
nodes:
  first: {type: transform, expr: "1"}
  nap: {type: wait, seconds: 3, needs: [first]}
  after: {type: transform, needs: [nap], expr: "nodes.first.output + 1"}
"""
BROKEN = """\
name: broken
inputs:
  n: {type: integer, default: 0}
nodes:
  divide: {type: transform, expr: "10 / inputs.n"}
"""
FINAL = ("completed", "failed", "cancelled")


async def save(http: httpx.AsyncClient, name: str, text: str) -> dict[str, Any]:
    resp = await http.post("/api/v1/flows", json={"name": name, "yaml": text})
    assert resp.status_code == 200, resp.text
    data: dict[str, Any] = resp.json()
    return data


async def start(http: httpx.AsyncClient, name: str, **body: Any) -> str:
    resp = await http.post(f"/api/v1/flows/{name}/runs", json=body)
    assert resp.status_code == 201, resp.text
    run_id: str = resp.json()["id"]
    assert resp.headers["location"] == f"/api/v1/tasks/{run_id}"
    return run_id


async def task(http: httpx.AsyncClient, run_id: str) -> dict[str, Any]:
    resp = await http.get(f"/api/v1/tasks/{run_id}")
    assert resp.status_code == 200, resp.text
    data: dict[str, Any] = resp.json()
    return data


async def until(
    http: httpx.AsyncClient, run_id: str, states: tuple[str, ...] = FINAL, within: float = 20
) -> dict[str, Any]:
    deadline = time.monotonic() + within
    while True:
        data = await task(http, run_id)
        if data["status"] in states or time.monotonic() > deadline:
            return data
        await asyncio.sleep(0.1)


async def test_save_run_and_watch_the_stages(gw: GatewayHarness) -> None:
    saved = await save(gw.http, "greet", GREET)
    assert saved == {
        "name": "greet",
        "description": "Greets someone, with a short pause for long names",
        "path": "flows/greet.yaml",
        "valid": True,
        "errors": [],
        "next_run": None,
    }
    listed = (await gw.http.get("/api/v1/flows")).json()
    assert [(f["name"], f["valid"]) for f in listed] == [("greet", True)]

    run_id = await start(gw.http, "greet", args={"who": "Ada Lovelace"}, priority=4)
    data = await until(gw.http, run_id)
    assert data["status"] == "completed", data
    assert (data["id"], data["flow"], data["priority"], data["progress"]) == (
        run_id,
        "greet",
        4,
        100,
    )
    assert data["origin"]["channel"] == "web"
    stages = {s["node"]: s for s in data["stages"]}
    assert list(stages) == ["hello", "long", "nap", "short", "done"]
    assert {n: s["status"] for n, s in stages.items()} == {
        "hello": "completed",
        "long": "completed",
        "nap": "completed",
        "short": "skipped",
        "done": "completed",
    }
    done = stages["done"]
    assert done["output_preview"] == "hello Ada Lovelace!"
    assert done["attempts"] == 1 and done["progress"] == 100 and done["error"] is None
    assert done["started_at"] <= done["finished_at"] and done["duration_s"] >= 0
    assert "waited_s" in stages["nap"]["output_preview"]
    assert {"tokens_in", "tokens_out", "tool_calls"} <= done.keys()
    assert stages["short"]["progress"] == 100 and stages["short"]["started_at"] is None

    schema = (await gw.http.get("/openapi.json")).json()
    control = schema["paths"]["/api/v1/tasks/{task_id}/control"]["post"]
    assert "ControlOut" in str(control["responses"]["200"])
    assert "from" in schema["components"]["schemas"]["Control"]["properties"]
    tasks = (await gw.http.get("/api/v1/tasks")).json()
    assert tasks["scope"] == "mine"
    assert [(t["id"], t["flow"], t["status"]) for t in tasks["tasks"]] == [
        (run_id, "greet", "completed")
    ]
    stats = (await gw.http.get("/api/v1/statistics/flows")).json()
    assert stats["runs"] == 1 and stats["by_status"]["completed"] == 1
    assert stats["by_flow"] == {"greet": 1} and stats["note"] is None
    assert stats["mean_duration_s"] is not None and stats["mean_duration_s"] >= 0


async def test_invalid_flows_say_where(gw: GatewayHarness) -> None:
    broken_yaml = "name: bad\nnodes:\n  a: {type: transform, expr: [unclosed\n"
    resp = await gw.http.post("/api/v1/flows", json={"name": "bad", "yaml": broken_yaml})
    assert resp.status_code == 422, resp.text
    body = resp.json()
    assert body["error"]["code"] == "invalid_flow"
    assert body["errors"] and all(e.startswith("flows/bad.yaml:") for e in body["errors"])
    line, col = body["errors"][0].split(":")[1:3]
    assert int(line) >= 3 and int(col) >= 1

    unknown_need = "name: odd\nnodes:\n  a: {type: transform, expr: '1', needs: [ghost]}\n"
    resp = await gw.http.post("/api/v1/flows", json={"name": "odd", "yaml": unknown_need})
    assert resp.status_code == 422
    assert any(e.startswith("flows/odd.yaml:3:") and "ghost" in e for e in resp.json()["errors"])
    bad_name = await gw.http.post("/api/v1/flows", json={"name": "Bad Name", "yaml": GREET})
    assert bad_name.status_code == 422
    assert bad_name.json()["error"]["code"] == "invalid_request"
    # Nothing invalid was saved.
    assert (await gw.http.get("/api/v1/flows")).json() == []


async def test_unknown_flow_bad_args_and_unknown_task(gw: GatewayHarness) -> None:
    await save(gw.http, "greet", GREET)
    missing = await gw.http.post("/api/v1/flows/nope/runs", json={})
    assert missing.status_code == 404 and missing.json()["error"]["code"] == "unknown_flow"
    no_who = await gw.http.post("/api/v1/flows/greet/runs", json={"args": {}})
    assert no_who.status_code == 422
    assert no_who.json()["error"]["code"] == "invalid_args"
    assert "who" in no_who.json()["error"]["message"]
    no_body = await gw.http.post("/api/v1/flows/greet/runs")
    assert no_body.status_code == 422, no_body.text
    assert "who" in no_body.json()["error"]["message"]
    typed = await gw.http.post("/api/v1/flows/greet/runs", json={"args": {"who": 3}})
    assert typed.status_code == 422 and "string" in typed.json()["error"]["message"]
    priority = await gw.http.post(
        "/api/v1/flows/greet/runs", json={"args": {"who": "x"}, "priority": 9}
    )
    assert priority.status_code == 422 and "priority" in priority.json()["error"]["message"]
    unknown = await gw.http.get("/api/v1/tasks/0123456789abcdef")
    assert unknown.status_code == 404 and unknown.json()["error"]["code"] == "unknown_task"


async def test_two_users_never_see_each_others_runs(
    gw: GatewayHarness, carol: httpx.AsyncClient
) -> None:
    await save(gw.http, "greet", GREET)
    # Carol has her own workspace: the owner's flow is not hers.
    assert (await carol.get("/api/v1/flows")).json() == []
    assert (
        await carol.post("/api/v1/flows/greet/runs", json={"args": {"who": "x"}})
    ).status_code == 404
    await save(carol, "greet", GREET)
    mine = await start(gw.http, "greet", args={"who": "Ada"})
    hers = await start(carol, "greet", args={"who": "Carol"})
    await until(gw.http, mine)
    assert (await until(carol, hers))["status"] == "completed"

    assert [t["id"] for t in (await carol.get("/api/v1/tasks")).json()["tasks"]] == [hers]
    assert [t["id"] for t in (await gw.http.get("/api/v1/tasks")).json()["tasks"]] == [mine]
    # Another user's task answers exactly like a missing one.
    for path in (f"/api/v1/tasks/{mine}", "/api/v1/tasks/0000000000000000"):
        resp = await carol.get(path)
        assert resp.status_code == 404
        assert resp.json() == {
            "error": {"code": "unknown_task", "message": resp.json()["error"]["message"]}
        }
    theirs = await carol.get(f"/api/v1/tasks/{mine}")
    nowhere = await carol.get("/api/v1/tasks/0000000000000000")
    assert theirs.json()["error"]["message"].replace(mine, "X") == nowhere.json()["error"][
        "message"
    ].replace("0000000000000000", "X")
    stop = await carol.post(f"/api/v1/tasks/{mine}/control", json={"action": "stop"})
    assert stop.status_code == 404
    # Only the owner sees everyone's.
    assert (await carol.get("/api/v1/tasks?all=true")).status_code == 403
    everyone = (await gw.http.get("/api/v1/tasks?all=true")).json()
    assert everyone["scope"] == "all" and {t["id"] for t in everyone["tasks"]} == {mine, hers}
    assert (await carol.get("/api/v1/statistics/flows")).json()["runs"] == 1
    assert (await gw.http.get("/api/v1/statistics/flows?all=true")).json()["runs"] == 2


async def control(http: httpx.AsyncClient, run_id: str, **body: Any) -> httpx.Response:
    return await http.post(f"/api/v1/tasks/{run_id}/control", json=body)


async def test_pause_resume_stop(gw: GatewayHarness) -> None:
    await save(gw.http, "slow", SLOW)
    run_id = await start(gw.http, "slow")
    waiting = await until(gw.http, run_id, ("waiting",), within=10)
    assert waiting["status"] == "waiting", waiting
    assert {s["node"]: s["status"] for s in waiting["stages"]}["nap"] == "waiting"

    paused = await control(gw.http, run_id, action="pause")
    assert paused.status_code == 200, paused.text
    assert paused.json()["run_id"] == run_id and paused.json()["task"]["status"] == "paused"
    again = await control(gw.http, run_id, action="pause")
    assert again.status_code == 409 and again.json()["error"]["code"] == "not_now"

    resumed = await control(gw.http, run_id, action="resume")
    assert resumed.status_code == 200, resumed.text
    data = await until(gw.http, run_id, within=20)
    assert data["status"] == "completed", data
    assert data["stages"][-1]["output_preview"] == "2"

    other = await start(gw.http, "slow")
    await until(gw.http, other, ("waiting",), within=10)
    stopped = await control(gw.http, other, action="stop")
    assert stopped.status_code == 200 and stopped.json()["task"]["status"] == "cancelled"
    assert (await control(gw.http, other, action="resume")).status_code == 409


async def test_retry_and_fork_make_new_runs(gw: GatewayHarness) -> None:
    await save(gw.http, "broken", BROKEN)
    await save(gw.http, "greet", GREET)
    failed = await start(gw.http, "broken")
    data = await until(gw.http, failed)
    assert data["status"] == "failed" and data["stages"][0]["error"]

    retried = await control(gw.http, failed, action="retry")
    assert retried.status_code == 200, retried.text
    new_id = retried.json()["run_id"]
    assert new_id != failed and retried.json()["id"] == failed
    assert (await until(gw.http, new_id))["forked_from"] == failed

    done = await start(gw.http, "greet", args={"who": "Bo"})
    await until(gw.http, done)
    forked = await control(gw.http, done, action="fork", **{"from": "done"})
    assert forked.status_code == 200, forked.text
    fork_id = forked.json()["run_id"]
    fork = await until(gw.http, fork_id)
    assert fork["status"] == "completed" and fork["forked_from"] == done
    assert fork["stages"][-1]["output_preview"] == "hello Bo!"

    never = await control(gw.http, done, action="fork", **{"from": "nowhere"})
    assert never.status_code == 409
    for body in ({"action": "fork"}, {"action": "stop", "from": "done"}, {"action": "explode"}):
        resp = await control(gw.http, done, **body)
        assert resp.status_code == 422 and resp.json()["error"]["code"] == "invalid_request"


async def test_flows_turned_off_or_missing_is_503(tmp_path: Path) -> None:
    env = {"NEXFLOW_FLOWS__ENABLED": "false"}
    async with GatewayHarness(tmp_path / "home", env=env) as gw:
        for path in ("/api/v1/tasks", "/api/v1/tasks/abc"):
            resp = await gw.http.get(path)
            assert resp.status_code == 503, (path, resp.text)
            assert resp.json()["error"]["code"] == "flows_unavailable"
            assert "flows.enabled" in resp.json()["error"]["message"]
        stats = (await gw.http.get("/api/v1/statistics/flows")).json()
        assert stats["runs"] == 0 and "flows.enabled" in stats["note"]
        # A gateway built without the flow service answers every route with 503.
        assert gw.app is not None
        state = gw.app.web.state
        state.services = dataclasses.replace(state.services, flows=None)
        for method, path in (
            ("GET", "/api/v1/flows"),
            ("POST", "/api/v1/flows/greet/runs"),
            ("GET", "/api/v1/tasks"),
            ("GET", "/api/v1/tasks/abc"),
            ("POST", "/api/v1/tasks/abc/control"),
        ):
            body = {"action": "stop"} if path.endswith("control") else {}
            resp = await gw.http.request(method, path, json=body)
            assert resp.status_code == 503, (path, resp.text)
            assert resp.json()["error"] == {
                "code": "flows_disabled",
                "message": "Flows are not enabled on this gateway.",
            }
        stats = (await gw.http.get("/api/v1/statistics/flows")).json()
        assert stats["note"] == "flows are not enabled yet"
