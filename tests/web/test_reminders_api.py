"""The caller's reminders over HTTP: listed soonest first, cancelled, and never another
user's (their id is 404, like one that does not exist)."""

from __future__ import annotations

from datetime import timedelta

import httpx

from nexflow.tasks.model import ReminderTarget
from nexflow.testing.harness import GatewayHarness


async def user_of(gw: GatewayHarness, sender: str) -> str:
    assert gw.app is not None
    found = await gw.app.storage.find_user("web", sender)
    assert found is not None
    return found[0]


async def test_list_and_cancel_only_ones_own(gw: GatewayHarness, carol: httpx.AsyncClient) -> None:
    assert gw.app is not None
    assert (await gw.http.get("/api/v1/reminders")).json() == []  # the owner exists now
    assert (await carol.get("/api/v1/reminders")).json() == []
    owner, her = await user_of(gw, "owner"), await user_of(gw, "user:carol")
    reminders = gw.app.reminders
    later = await reminders.add_in(
        ReminderTarget(owner, "web", "owner", ""), "stand-up", timedelta(hours=2)
    )
    sooner = await reminders.add_in(
        ReminderTarget(owner, "web", "owner", ""), "tea", timedelta(minutes=5)
    )
    hers = await reminders.add_in(
        ReminderTarget(her, "web", "user:carol", ""), "gym", timedelta(hours=1)
    )

    mine = (await gw.http.get("/api/v1/reminders")).json()
    assert [r["text"] for r in mine] == ["tea", "stand-up"]
    assert mine[0]["id"] == sooner.id and mine[0]["kind"] == "once" and mine[0]["next_run"]
    assert [r["text"] for r in (await carol.get("/api/v1/reminders")).json()] == ["gym"]

    refused = await carol.delete(f"/api/v1/reminders/{later.id}")
    assert refused.status_code == 404 and refused.json()["error"]["code"] == "not_found"
    done = await gw.http.delete(f"/api/v1/reminders/{later.id}")
    assert done.status_code == 200 and done.json()["text"] == "stand-up"
    assert [r["text"] for r in (await gw.http.get("/api/v1/reminders")).json()] == ["tea"]
    assert (await gw.http.delete(f"/api/v1/reminders/{later.id}")).status_code == 404
    assert (await carol.delete(f"/api/v1/reminders/{hers.id}")).status_code == 200
