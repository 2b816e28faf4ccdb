"""A panel Action starts a flow of the panel's owner (``$emit('run_flow', ...)``), through
the real sandbox, panel runtime and FlowService of a running gateway: the run completes as
the owner, tainted by the panel; a retried press starts one run; another user's panel is
404 and a panel only ever reaches its owner's flows; unknown flows, bad arguments and
disabled flows are answered in the outcome, never as a 5xx."""

from __future__ import annotations

from html import unescape
from pathlib import Path
from typing import Any

from nexflow.gateway.flows import FlowService
from nexflow.panels.runtime import PanelService
from nexflow.testing.harness import GatewayHarness
from nexflow.testing.tools import WhoAmI

FLOW = """\
name: note
inputs:
  topic: {type: string, required: true}
nodes:
  who: {type: tool, tool: whoami}
  line: {type: transform, expr: "'about ' + inputs.topic"}
"""
PANEL = """<NexusPanel id="launcher" title="Launcher">
  <Data>
    <State name="launched" type="number" default="0" />
  </Data>
  <Logic>
    <Tool name="launch" description="Starts a flow">
      <Arg name="flow" type="string" required="true" />
      <Arg name="args" type="object" required="false" />
      <Arg name="topic" type="string" required="false" />
      <Handler><![CDATA[
        $state.launched = $state.launched + 1;
        $emit('toast', 'launching ' + flow);
        $emit('run_flow', {flow: flow, args: args || {topic: topic}});
      ]]></Handler>
    </Tool>
    <Tool name="malformed" description="Asks badly">
      <Handler>$emit('run_flow', {name: 'note'});</Handler>
    </Tool>
  </Logic>
  <View>
    <Metric label="Launched" value="{$state.launched}" />
    <Action label="Write a note" trigger="launch">
      <Arg name="flow" value="note" />
      <Arg name="topic" value="release" />
    </Action>
  </View>
</NexusPanel>"""


def parts(gw: GatewayHarness) -> tuple[PanelService, FlowService]:
    assert gw.app is not None and gw.app.panels is not None and gw.app.flows is not None
    return gw.app.panels, gw.app.flows


async def web_owner(gw: GatewayHarness) -> str:
    """The web owner's user id (created by the first panel request)."""
    assert gw.app is not None
    found = await gw.app.storage.find_user("web", "owner")
    assert found is not None
    return found[0]


async def press(gw: GatewayHarness, panel: str, action: str, key: str | None) -> Any:
    headers = {"Idempotency-Key": key} if key else {}
    resp = await gw.http.post(
        f"/api/v1/panels/{panel}/press", json={"action": action}, headers=headers
    )
    assert resp.status_code == 200, resp.text
    return resp.json()


async def test_an_action_starts_the_owners_flow_once_per_event(gw: GatewayHarness) -> None:
    panels, flows = parts(gw)
    who = WhoAmI()
    assert gw.app is not None
    gw.app.tools.builtins.add(who)
    created = await gw.http.post("/api/v1/panels", json={"nxml": PANEL})
    assert created.status_code == 201, created.text
    owner = await web_owner(gw)
    await flows.save_flow(owner, "note", FLOW)
    snap = (await gw.http.get("/api/v1/panels/launcher/snapshot")).json()
    [button] = snap["buttons"]

    first = await press(gw, "launcher", button["action"], "click-1")
    [started] = first["outcome"]["flows"]
    assert started["ok"] is True, started
    run_id = started["run_id"]
    assert run_id.startswith("panel-")
    text = unescape(first["snapshot"]["text"])
    assert f"flow 'note' started (run {run_id})" in text
    assert "launching note" in text

    again = await press(gw, "launcher", button["action"], "click-1")  # the same event, retried
    assert again["outcome"]["flows"][0]["run_id"] == run_id
    done = await (await flows.engine()).wait(run_id, owner=owner, timeout_s=30)
    assert done.status == "completed", done
    assert done.owner == owner
    assert who.users == [owner]
    assert [r.run_id for r in await flows.runs(owner)] == [run_id]
    assert done.untrusted == ("panel:launcher",)  # the approval rule of webhook runs

    other = await press(gw, "launcher", button["action"], "click-2")  # another click
    second = other["outcome"]["flows"][0]["run_id"]
    assert second != run_id
    assert {r.run_id for r in await flows.runs(owner)} == {run_id, second}
    assert panels.get("launcher").state == {"launched": 2}  # the retried click applied once


async def test_unknown_flow_and_bad_args_are_clear_answers(gw: GatewayHarness) -> None:
    _, flows = parts(gw)
    created = await gw.http.post("/api/v1/panels", json={"nxml": PANEL})
    assert created.status_code == 201, created.text
    owner = await web_owner(gw)
    await flows.save_flow(owner, "note", FLOW)

    async def launch(**args: Any) -> Any:
        resp = await gw.http.post("/api/v1/panels/launcher/tools/launch", json=args)
        assert resp.status_code == 200, resp.text
        body = resp.json()
        assert body["ok"] is True, body  # the handler's state is committed either way
        return body["flows"]

    [ghost] = await launch(flow="ghost", topic="x")
    assert ghost == {
        "flow": "ghost",
        "ok": False,
        "error": "no flow named 'ghost' (expected flows/ghost.yaml)",
        "message": "⚠ flow 'ghost' not started: no flow named 'ghost' (expected flows/ghost.yaml)",
    }
    [missing] = await launch(flow="note", args={})
    assert missing["ok"] is False
    assert missing["error"].startswith("flow 'note': ") and "topic" in missing["error"]
    [extra] = await launch(flow="note", args={"topic": "x", "colour": "red"})
    assert extra["ok"] is False and "colour" in extra["error"]
    resp = await gw.http.post("/api/v1/panels/launcher/tools/malformed", json={})
    assert resp.json()["flows"] == [
        {
            "flow": None,
            "ok": False,
            "error": "run_flow needs {flow: '<name>', args: {...}}",
            "message": "⚠ flow not started: run_flow needs {flow: '<name>', args: {...}}",
        }
    ]
    assert await flows.runs(owner) == []


async def test_another_users_panel_cannot_start_a_flow(gw: GatewayHarness) -> None:
    panels, flows = parts(gw)
    assert gw.app is not None
    # the web owner has the flow; bob has the panel
    await gw.http.get("/api/v1/panels")
    owner = await web_owner(gw)
    await flows.save_flow(owner, "note", FLOW)
    bob = await gw.app.storage.create_user("bob", "user", "telegram", "901")
    record = await panels.create(nxml=PANEL, owner=bob)
    action = (await panels.snapshot(record.id)).buttons[0].action

    # over HTTP the owner's web user sees bob's panel like a missing one
    resp = await gw.http.post(
        f"/api/v1/panels/{record.id}/press",
        json={"action": action},
        headers={"Idempotency-Key": "x"},
    )
    assert resp.status_code == 404
    assert resp.json()["error"]["code"] == "unknown_panel"
    resp = await gw.http.post(
        f"/api/v1/panels/{record.id}/tools/launch", json={"flow": "note", "topic": "x"}
    )
    assert resp.status_code == 404
    # a caller who is not the owner (the admin view) never starts a flow through it
    outcome = await panels.call_tool(
        record.id, "launch", {"flow": "note", "topic": "x"}, user_id=owner
    )
    assert outcome.flows[0]["error"] == "only the panel's owner can start flows from it"
    # bob's own press reaches bob's flows only: the owner's "note" is not his
    outcome = await panels.call_tool(
        record.id, "launch", {"flow": "note", "topic": "x"}, user_id=bob
    )
    assert outcome.flows[0]["error"] == "no flow named 'note' (expected flows/note.yaml)"
    assert await flows.runs(owner) == [] and await flows.runs(bob) == []


async def test_flows_turned_off_is_an_answer(tmp_path: Path, sandbox_cache: Path) -> None:
    env = {"NEXFLOW_PANELS__CACHE_DIR": str(sandbox_cache), "NEXFLOW_FLOWS__ENABLED": "false"}
    async with GatewayHarness(tmp_path / "home", env=env) as gw:
        created = await gw.http.post("/api/v1/panels", json={"nxml": PANEL})
        assert created.status_code == 201, created.text
        resp = await gw.http.post(
            "/api/v1/panels/launcher/tools/launch", json={"flow": "note", "topic": "x"}
        )
        assert resp.status_code == 200
        [answer] = resp.json()["flows"]
        assert answer["ok"] is False
        assert answer["error"] == "flows are turned off (flows.enabled)"


async def test_a_chat_press_starts_the_flow(gw: GatewayHarness) -> None:
    _, flows = parts(gw)
    assert gw.app is not None
    gw.app.tools.builtins.add(WhoAmI())
    created = await gw.http.post("/api/v1/panels", json={"nxml": PANEL})
    assert created.status_code == 201, created.text
    owner = await web_owner(gw)
    await flows.save_flow(owner, "note", FLOW)
    snap = (await gw.http.get("/api/v1/panels/launcher/snapshot")).json()
    reply = await gw.chat(f"/press {snap['buttons'][0]['action']}")
    assert reply["reply"] == "[panel launcher] Launcher"  # the snapshot (with the notice) follows
    [run] = await flows.runs(owner)
    assert run.flow == "note" and run.owner == owner and run.run_id.startswith("panel-")
    done = await (await flows.engine()).wait(run.run_id, owner=owner, timeout_s=30)
    assert done.status == "completed", done
