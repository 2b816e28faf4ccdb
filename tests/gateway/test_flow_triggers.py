"""Cron triggers of flows through a real gateway: a fire starts one run as the flow's
owner, a restart neither repeats a fire nor loses one within the grace window, an old
one is skipped and logged, and a deleted flow loses its schedule."""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

from nexflow.flows.triggers import fire_run_id
from nexflow.gateway.flow_schedule import TABLE
from nexflow.gateway.flow_triggers import FlowTriggers, job_id
from nexflow.gateway.flows import FlowService
from nexflow.tasks.jobstore import SQLiteJobStore
from nexflow.testing.harness import GatewayHarness
from nexflow.testing.tools import WhoAmI


def daily(at: datetime) -> str:
    """A cron line (seconds first) that fires once a day at ``at`` (UTC)."""
    return f"{at.second} {at.minute} {at.hour} * * *"


def flow_text(name: str, *crons: str, tool: str = "get_time") -> str:
    triggers = "".join(f"  - {{cron: '{c}'}}\n" for c in crons)
    return f"name: {name}\ntriggers:\n{triggers}nodes:\n  t: {{type: tool, tool: {tool}}}\n"


def parts(gw: GatewayHarness) -> tuple[FlowService, FlowTriggers]:
    assert gw.app is not None and gw.app.flows is not None
    assert gw.app.flow_triggers is not None
    return gw.app.flows, gw.app.flow_triggers


async def owner_of(gw: GatewayHarness) -> str:
    assert gw.app is not None
    found = await gw.app.storage.find_user("web", "owner")
    if found is None:
        await gw.chat("hello")
        found = await gw.app.storage.find_user("web", "owner")
    assert found is not None
    return found[0]


def rewind(db: Path, jid: str, when: datetime) -> None:
    """Set a stored trigger's next fire to ``when``, as if the gateway had been down
    then (or had died before the store recorded the fire)."""
    store = SQLiteJobStore(db, table=TABLE)
    store.open()
    try:
        job = store.lookup_job(jid)
        assert job is not None, jid
        job.next_run_time = when
        store.update_job(job)
    finally:
        store.shutdown()


async def runs_of(flows: FlowService, user: str, count: int, within: float = 8) -> list[str]:
    """The user's run ids once there are ``count`` of them (or after ``within`` s)."""
    ids: list[str] = []
    for _ in range(int(within / 0.1)):
        ids = [r.run_id for r in await flows.runs(user)]
        if len(ids) >= count:
            break
        await asyncio.sleep(0.1)
    return ids


async def test_flow_trigger_fires_once_as_the_flows_owner(tmp_path: Path) -> None:
    async with GatewayHarness(tmp_path) as gw:
        assert gw.app is not None
        flows, triggers = parts(gw)
        gateway_owner = await owner_of(gw)
        bob = await gw.app.storage.create_user("bob", "user", "telegram", "901")
        who = WhoAmI()
        gw.app.tools.builtins.add(who)
        await flows.save_flow(bob, "warm", "name: warm\nnodes:\n  t: {type: tool, tool: whoami}\n")
        await flows.runs(bob)  # the engine is up: the fire below need not wait for it
        assert await triggers.ready()
        due = datetime.now(UTC).replace(microsecond=0) + timedelta(seconds=3)
        # the same trigger twice: two jobs fire at the same time, one run starts
        saved = await flows.save_flow(
            bob, "tick", flow_text("tick", daily(due), daily(due), tool="whoami")
        )
        assert saved.next_run == due
        run_id = fire_run_id(bob, "tick", {}, due)
        assert await runs_of(flows, bob, 1) == [run_id]
        done = await (await flows.engine()).wait(run_id, owner=bob, timeout_s=20)
        assert done.status == "completed", done
        await asyncio.sleep(1.0)  # a second start would have shown by now
        assert [r.run_id for r in await flows.runs(bob)] == [run_id]
        assert await flows.runs(gateway_owner) == []
        assert who.users == [bob]
        # the listing shows the next fire: tomorrow, same time
        listed = {f.name: f for f in await flows.list_flows(bob)}
        assert listed["tick"].next_run == due + timedelta(days=1)
        assert listed["warm"].next_run is None


async def test_flow_trigger_restart_runs_a_missed_fire_once_and_skips_an_old_one(
    tmp_path: Path,
) -> None:
    now = datetime.now(UTC).replace(microsecond=0)
    recent = now - timedelta(minutes=10)  # within the grace window (1 hour by default)
    stale = now - timedelta(hours=3)
    async with GatewayHarness(tmp_path) as gw:
        assert gw.app is not None
        flows, triggers = parts(gw)
        user = await owner_of(gw)
        await flows.save_flow(user, "recent", flow_text("recent", daily(recent)))
        await flows.save_flow(user, "stale", flow_text("stale", daily(stale)))
        upcoming = await triggers.next_runs(user)
        assert upcoming == {
            "recent": recent + timedelta(days=1),
            "stale": stale + timedelta(days=1),
        }
        db = gw.app.config.database_path
    # the gateway was down at both times
    rewind(db, job_id(user, "recent", 0), recent)
    rewind(db, job_id(user, "stale", 0), stale)
    run_id = fire_run_id(user, "recent", {}, recent)
    gw = GatewayHarness(tmp_path)
    logs = gw.logs.subscribe()
    async with gw:
        flows, triggers = parts(gw)
        assert await triggers.ready()
        assert await runs_of(flows, user, 1) == [run_id]
        done = await (await flows.engine()).wait(run_id, owner=user, timeout_s=20)
        assert done.status == "completed", done
        assert (await triggers.next_runs(user))["recent"] == recent + timedelta(days=1)
        assert (await triggers.next_runs(user))["stale"] == stale + timedelta(days=1)
        lines = [json.loads(logs.get_nowait()) for _ in range(logs.qsize())]
        missed = [e for e in lines if e.get("event") == "flow_trigger_missed"]
        assert [e["flow"] for e in missed] == ["stale"], lines
    # died before the store recorded the fire: on start it fires again, same run id
    rewind(db, job_id(user, "recent", 0), recent)
    async with GatewayHarness(tmp_path) as gw:
        flows, triggers = parts(gw)
        assert await triggers.ready()
        for _ in range(50):
            if (await triggers.next_runs(user))["recent"] > now:
                break
            await asyncio.sleep(0.1)
        assert (await triggers.next_runs(user))["recent"] == recent + timedelta(days=1)
        await asyncio.sleep(1.0)  # the fire's start has gone through by now
        assert [r.run_id for r in await flows.runs(user)] == [run_id]


async def test_flow_trigger_of_a_deleted_or_changed_flow_is_unscheduled(tmp_path: Path) -> None:
    async with GatewayHarness(tmp_path) as gw:
        assert gw.app is not None
        flows, triggers = parts(gw)
        user = await owner_of(gw)
        at = datetime(2026, 1, 1, 9, 30, tzinfo=UTC)
        await flows.save_flow(user, "a", flow_text("a", daily(at), daily(at + timedelta(hours=1))))
        await flows.save_flow(user, "b", flow_text("b", daily(at)))
        assert set(await triggers.next_runs(user)) == {"a", "b"}
        # saved again without triggers: its jobs go
        await flows.save_flow(user, "b", "name: b\nnodes:\n  t: {type: tool, tool: get_time}\n")
        assert set(await triggers.next_runs(user)) == {"a"}
        # deleted from the workspace: listing the flows brings the schedule up to date
        service = await gw.app.workspaces.service()  # type: ignore[union-attr]
        (service.workspace_path(user) / "flows" / "a.yaml").unlink()
        assert [f.name for f in await flows.list_flows(user)] == ["b"]
        assert await triggers.next_runs(user) == {}
        store = SQLiteJobStore(gw.app.config.database_path, table=TABLE)
        store.open()
        try:
            assert store.jobs_of(user) == []
        finally:
            store.shutdown()


async def test_flow_listing_shows_the_next_fire_over_http_and_chat(tmp_path: Path) -> None:
    async with GatewayHarness(tmp_path) as gw:
        assert gw.app is not None
        flows, _ = parts(gw)
        user = await owner_of(gw)
        # 09:00 Moscow (UTC+3) on weekdays, and a second trigger at 12:00 UTC every day
        text = (
            "name: report\ntriggers:\n"
            "  - {cron: '0 9 * * 1-5', timezone: Europe/Moscow}\n  - {cron: '0 12 * * *'}\n"
            "nodes:\n  t: {type: tool, tool: get_time}\n"
        )
        resp = await gw.http.post("/api/v1/flows", json={"name": "report", "yaml": text})
        assert resp.status_code == 200, resp.text
        now = datetime.now(UTC)
        weekday = now.replace(hour=6, minute=0, second=0, microsecond=0)
        while weekday <= now or weekday.weekday() >= 5:
            weekday += timedelta(days=1)
        noon = now.replace(hour=12, minute=0, second=0, microsecond=0)
        noon += timedelta(days=1) if noon <= now else timedelta(0)
        expected = min(weekday, noon)
        assert datetime.fromisoformat(resp.json()["next_run"]) == expected
        listed = (await gw.http.get("/api/v1/flows")).json()
        assert [(f["name"], datetime.fromisoformat(f["next_run"])) for f in listed] == [
            ("report", expected)
        ]
        when = expected.strftime("%Y-%m-%d %H:%M UTC")
        reply = await gw.chat("/flows")
        assert f"• report · next run {when}" in str(reply), reply
        await gw.app.storage.set_user_lang(user, "ru")
        reply = await gw.chat("/flows")
        assert f"• report · следующий запуск {when}" in str(reply), reply
        assert await flows.list_flows(user)
