"""A flow change proposed by the AI arrives as a patch: through a real gateway, the
scripted model calls ``patch_propose`` on ``flows/<name>.yaml``; the flow list, runs and
cron triggers keep main's version until the owner accepts (then the new version is
listed, runs and is scheduled), a rejected change leaves the old version running, and an
invalid flow is named at its line in the review before anyone accepts."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from nexflow.gateway.flow_patches import MAX_PROBLEMS, flow_name, flow_problems
from nexflow.gateway.flow_triggers import FlowTriggers
from nexflow.gateway.flows import FlowService
from nexflow.testing.fake_llm import Reply
from nexflow.testing.harness import GatewayHarness
from nexflow.workspace.api import FileChange


def transform_flow(name: str, value: str, cron: str | None = None) -> str:
    triggers = f"triggers:\n  - {{cron: '{cron}'}}\n" if cron else ""
    return f"name: {name}\n{triggers}nodes:\n  out: {{type: transform, expr: \"'{value}'\"}}\n"


BAD_FLOW = (
    "name: broken\n"
    "nodes:\n"
    "  first: {type: transform, expr: \"'x'\"}\n"
    "  second: {type: transform, needs: [nowhere], expr: \"'y'\"}\n"
)


def parts(gw: GatewayHarness) -> tuple[FlowService, FlowTriggers]:
    assert gw.app is not None and gw.app.flows is not None
    assert gw.app.flow_triggers is not None
    return gw.app.flows, gw.app.flow_triggers


async def web_owner(gw: GatewayHarness) -> str:
    assert gw.app is not None
    found = await gw.app.storage.find_user("web", "owner")
    assert found is not None
    return found[0]


async def propose(gw: GatewayHarness, path: str, content: str, summary: str) -> dict[str, Any]:
    """The model proposes ``content`` for ``path``; the patch review card it posted."""
    gw.llm.push(
        Reply(
            tool_calls=(
                (
                    "patch_propose",
                    {"target": f"file:{path}", "content": content, "summary": summary},
                ),
            )
        ),
        Reply(text="I proposed it; accept it to use it."),
    )
    reply = await gw.chat(f"please change {path}")
    resp = await gw.http.get(f"/api/v1/sessions/{reply['session']}")
    cards = [
        item["outbound"]
        for item in resp.json()["timeline"]
        if item["kind"] == "card" and item["outbound"]["kind"] == "patch_review"
    ]
    assert len(cards) == 1, cards
    card: dict[str, Any] = cards[0]
    return card


def tool_answer(gw: GatewayHarness) -> str:
    """What the last ``patch_propose`` call answered the model."""
    content: str = gw.llm.requests[-1]["messages"][-1]["content"]
    return content


async def listed(gw: GatewayHarness) -> dict[str, dict[str, Any]]:
    resp = await gw.http.get("/api/v1/flows")
    assert resp.status_code == 200, resp.text
    return {f["name"]: f for f in resp.json()}


async def run_output(gw: GatewayHarness, owner: str, name: str) -> str:
    flows, _ = parts(gw)
    resp = await gw.http.post(f"/api/v1/flows/{name}/runs", json={})
    assert resp.status_code == 201, resp.text
    done = await (await flows.engine()).wait(resp.json()["id"], owner=owner, timeout_s=30)
    assert done.status == "completed", done
    (node,) = done.nodes
    return node.output_preview


async def test_flow_a_new_flow_from_the_model_waits_for_accept(tmp_path: Path) -> None:
    due = datetime.now(UTC).replace(microsecond=0) + timedelta(hours=2)
    cron = f"{due.second} {due.minute} {due.hour} * * *"
    async with GatewayHarness(tmp_path) as gw:
        flows, triggers = parts(gw)
        card = await propose(
            gw, "flows/nightly.yaml", transform_flow("nightly", "new", cron), "A nightly flow"
        )
        owner = await web_owner(gw)
        assert await triggers.ready()
        assert "target: file:flows/nightly.yaml (from chat)" in card["summary"]
        assert not any(line.startswith("⚠") for line in card["summary"])
        assert "is pending" in tool_answer(gw) and "problems" not in tool_answer(gw)
        # nothing took effect: not listed, not runnable, not scheduled
        assert "nightly" not in await listed(gw)
        missing = await gw.http.post("/api/v1/flows/nightly/runs", json={})
        assert missing.status_code == 404, missing.text
        assert await triggers.next_runs(owner) == {}

        accepted = await gw.http.post(f"/api/v1/patches/{card['patch_id']}/accept")
        assert accepted.json()["status"] == "merged"
        # scheduled by the accept itself, before anyone lists the flows
        assert await triggers.next_runs(owner) == {"nightly": due}
        flow = (await listed(gw))["nightly"]
        assert flow["valid"] and flow["next_run"] is not None
        assert await run_output(gw, owner, "nightly") == "new"
        chat_list = await gw.chat("/flows")
        assert "nightly" in chat_list["reply"]
        assert [f.name for f in await flows.list_flows(owner)] == ["nightly"]


async def test_flow_a_rejected_edit_leaves_the_old_version_running(tmp_path: Path) -> None:
    due = datetime.now(UTC).replace(microsecond=0) + timedelta(hours=3)
    cron = f"{due.second} {due.minute} {due.hour} * * *"
    async with GatewayHarness(tmp_path) as gw:
        _, triggers = parts(gw)
        saved = await gw.http.post(
            "/api/v1/flows", json={"name": "daily", "yaml": transform_flow("daily", "v1")}
        )
        assert saved.status_code in (200, 201), saved.text
        owner = await web_owner(gw)
        assert await run_output(gw, owner, "daily") == "v1"
        assert await triggers.ready()

        card = await propose(
            gw, "flows/daily.yaml", transform_flow("daily", "v2", cron), "Run daily, say v2"
        )
        assert "-  out: {type: transform, expr: \"'v1'\"}" in card["diff"]
        assert await run_output(gw, owner, "daily") == "v1"  # pending: main still runs
        assert await triggers.next_runs(owner) == {}

        rejected = await gw.http.post(f"/api/v1/patches/{card['patch_id']}/reject")
        assert rejected.json()["status"] == "rejected"
        assert await triggers.next_runs(owner) == {}
        assert (await listed(gw))["daily"]["next_run"] is None
        assert await run_output(gw, owner, "daily") == "v1"

        # the same change proposed again and accepted: v2 runs and is scheduled
        card = await propose(
            gw, "flows/daily.yaml", transform_flow("daily", "v2", cron), "Run daily, say v2"
        )
        accepted = await gw.http.post(f"/api/v1/patches/{card['patch_id']}/accept")
        assert accepted.json()["status"] == "merged"
        assert await triggers.next_runs(owner) == {"daily": due}
        assert await run_output(gw, owner, "daily") == "v2"


async def test_flow_an_invalid_proposal_is_named_at_its_line(tmp_path: Path) -> None:
    async with GatewayHarness(tmp_path) as gw:
        saved = await gw.http.post(
            "/api/v1/flows", json={"name": "good", "yaml": transform_flow("good", "ok")}
        )
        assert saved.status_code in (200, 201), saved.text
        card = await propose(gw, "flows/broken.yaml", BAD_FLOW, "A broken flow")
        problems = [line for line in card["summary"] if line.startswith("⚠")]
        assert problems, card["summary"]
        assert all("not a valid flow: flows/broken.yaml:4:" in p for p in problems), problems
        assert "nowhere" in problems[0]
        # the model hears it too, and so does the patch's review over HTTP
        assert "flows/broken.yaml:4:" in tool_answer(gw)
        review = (await gw.http.get(f"/api/v1/patches/{card['patch_id']}")).json()
        assert review["problems"] == [p.removeprefix("⚠ ") for p in problems]
        assert "broken" not in await listed(gw)

        accepted = await gw.http.post(f"/api/v1/patches/{card['patch_id']}/accept")
        assert accepted.json()["status"] == "merged"
        flows = await listed(gw)  # the bad file is reported, the good one still listed
        assert flows["good"]["valid"]
        assert not flows["broken"]["valid"]
        assert any("flows/broken.yaml:4:" in e for e in flows["broken"]["errors"])
        owner = await web_owner(gw)
        assert await run_output(gw, owner, "good") == "ok"
        refused = await gw.http.post("/api/v1/flows/broken/runs", json={})
        assert refused.status_code == 422, refused.text


async def test_flow_check_ignores_files_that_are_not_flows(tmp_path: Path) -> None:
    async with GatewayHarness(tmp_path) as gw:
        card = await propose(gw, "notes/flows.yaml", BAD_FLOW, "Not a flow")
        assert not any(line.startswith("⚠") for line in card["summary"])


def test_flow_problems_names_the_file_and_line() -> None:
    ok = transform_flow("daily", "v1")
    assert flow_problems("flows/daily.yaml", "daily", ok) == []
    assert flow_problems("flows/other.yaml", "other", ok) == [
        "not a valid flow: flows/other.yaml:1:1: name: 'daily' must match the file name 'other'"
    ]
    assert flow_problems("flows/Big One.yaml", "Big One", ok) == [
        "not a valid flow: flows/Big One.yaml:0:0: name: use a-z, 0-9, '-' or '_'"
    ]
    many = "name: many\nnodes:\n" + "".join(
        f"  n{i}: {{type: transform, needs: [gone{i}], expr: \"'x'\"}}\n" for i in range(15)
    )
    found = flow_problems("flows/many.yaml", "many", many)
    assert len(found) == MAX_PROBLEMS + 1 and found[-1] == "… and 5 more"
    assert found[0].startswith("not a valid flow: flows/many.yaml:3:")
    # only flows/*.yaml of the default workspace are flows
    assert flow_name(FileChange("u", True, "flows/a.yaml", "")) == "a"
    assert flow_name(FileChange("u", False, "flows/a.yaml", "")) is None
    assert flow_name(FileChange("u", True, "flows/sub/a.yaml", "")) is None
    assert flow_name(FileChange("u", True, "flows/a.yml", "")) is None
