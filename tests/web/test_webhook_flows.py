"""A webhook with `flow:` runs that flow once per delivery, as the user of `to.sender`,
with inputs rendered from the payload; a replay runs nothing."""

import asyncio
import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from test_webhooks import CHAT, GITHUB_SECRET, RUN, Chat, github_headers, hooked_chat, post

from nexflow.testing.harness import GatewayHarness

FLOW = """\
name: ci-failure
description: Note which run failed
inputs:
  branch: {type: string, required: true}
  run: {type: string, required: true}
nodes:
  note: {type: transform, expr: "'failed on ' + inputs.branch + ': ' + inputs.run"}
"""
CONFIG: dict[str, Any] = {
    "security": {"owner": {"telegram": [str(CHAT)]}},
    "outbox": {"initial_backoff_s": 0.1, "max_backoff_s": 0.5},
    "webhooks": {
        "inbound": {
            "ci": {
                "secret": GITHUB_SECRET,
                "scheme": "github",
                "to": {"channel": "telegram", "chat_id": str(CHAT)},
                "events": ["workflow_run"],
                "flow": "ci-failure",
                "flow_args": {
                    "branch": "{workflow_run.head_branch}",
                    "run": "{workflow_run.html_url}",
                },
            },
            "ghost": {
                "secret": GITHUB_SECRET,
                "scheme": "github",
                "to": {"channel": "telegram", "chat_id": str(CHAT)},
                "flow": "no-such-flow",
            },
        }
    },
}


@pytest.fixture
async def hooked(tmp_path: Path) -> AsyncIterator[tuple[GatewayHarness, Chat]]:
    async with hooked_chat(
        tmp_path, CONFIG
    ) as running:  # the owner's user exists once they have written
        yield running


async def owner_runs(gw: GatewayHarness) -> list[Any]:
    assert gw.app is not None and gw.app.flows is not None
    found = await gw.app.storage.find_user("telegram", str(CHAT))
    assert found is not None
    return await gw.app.flows.runs(found[0])


async def test_a_delivery_runs_the_flow_once(hooked: tuple[GatewayHarness, Chat]) -> None:
    gw, _ = hooked
    assert gw.app is not None and gw.app.flows is not None
    owner = await gw.app.storage.find_user("telegram", str(CHAT))
    assert owner is not None
    await gw.app.flows.save_flow(owner[0], "ci-failure", FLOW)
    body = json.dumps(RUN).encode()
    first = await post(gw, "ci", body, github_headers(body, "f-1"))
    assert first.status_code == 202 and first.json() == {"status": "accepted"}
    async with asyncio.timeout(30):
        while True:
            runs = await owner_runs(gw)
            if runs and runs[0].status in ("completed", "failed", "cancelled"):
                break
            await asyncio.sleep(0.2)
    (run,) = runs
    assert run.status == "completed" and run.flow == "ci-failure"
    # Its inputs are someone else's text: the run is untrusted from its first node.
    status = await gw.app.flows.run(owner[0], run.run_id)
    assert status.untrusted == ("webhook:ci",)
    (note,) = [n for n in status.nodes if n.node == "note"]
    expected = "failed on main: https://github.com/acme/app/actions/runs/1"
    assert expected in json.dumps(note.output_preview)
    again = await post(gw, "ci", body, github_headers(body, "f-1"))
    assert again.json() == {"status": "duplicate"}
    await asyncio.sleep(0.5)
    assert len(await owner_runs(gw)) == 1


async def test_a_missing_flow_is_refused_not_a_5xx(hooked: tuple[GatewayHarness, Chat]) -> None:
    gw, _ = hooked
    body = json.dumps(RUN).encode()
    resp = await post(gw, "ghost", body, github_headers(body, "f-2"))
    assert resp.status_code == 202 and resp.json() == {"status": "refused"}
    assert await owner_runs(gw) == []
