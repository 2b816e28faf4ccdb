"""The bundled ``alertmanager`` skill against a loopback fake of Alertmanager's API v2."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from bundled_support import call_skill, failure, refusal, run_skill, skill_gateway, tool_json
from fakes_monitoring import FakeAlertmanager

from nexflow.skills.result import RunResult

OLD = "0d1e7c5e-0000-4000-8000-000000000001"


@pytest.fixture
def am() -> Iterator[FakeAlertmanager]:
    with FakeAlertmanager() as fake:
        yield fake


async def ask(fake: FakeAlertmanager, workspace: Path, payload: dict[str, Any]) -> RunResult:
    return await run_skill("alertmanager", payload, workspace, {"ALERTMANAGER_URL": fake.url})


def when(stamp: str) -> datetime:
    return datetime.fromisoformat(stamp.replace("Z", "+00:00"))


async def test_alerts_filtered_by_matchers(am: FakeAlertmanager, workspace: Path) -> None:
    r = await ask(am, workspace, {})
    assert r.ok, (r.error, r.stderr_tail)
    assert r.data["count"] == 3
    latency = r.data["items"][0]
    assert latency["name"] == "HighLatency" and latency["state"] == "suppressed"
    assert latency["silenced_by"] == [OLD] and latency["receivers"] == ["team-api"]
    r = await ask(
        am, workspace, {"action": "alerts", "matchers": ['service="db"', "severity=~pa.e"]}
    )
    assert [a["name"] for a in r.data["items"]] == ["InstanceDown", "DiskFull"]
    assert am.requests[-1].query["filter"] == ['service="db"', 'severity=~"pa.e"']
    r = await ask(am, workspace, {"silenced": False})
    assert [a["name"] for a in r.data["items"]] == ["InstanceDown", "DiskFull"]
    assert am.requests[-1].query["silenced"] == ["false"]


async def test_silences_listed(am: FakeAlertmanager, workspace: Path) -> None:
    r = await ask(am, workspace, {"action": "silences", "state": "active"})
    assert r.ok, r.error
    assert r.data["items"] == [
        {
            "id": OLD,
            "state": "active",
            "matchers": ['alertname="HighLatency"'],
            "starts_at": "2026-12-01T10:00:00.000Z",
            "ends_at": "2099-12-01T14:00:00.000Z",
            "created_by": "alice",
            "comment": "known issue, deploy in progress",
        }
    ]
    r = await ask(am, workspace, {"action": "silences", "state": "expired"})
    assert r.data == {"action": "silences", "items": [], "count": 0}


async def test_create_and_expire_a_silence(am: FakeAlertmanager, workspace: Path) -> None:
    payload = {
        "action": "silence",
        "matchers": ["alertname=DiskFull", 'service="db"'],
        "duration": "1h30m",
        "comment": "resizing the volume",
    }
    r = await ask(am, workspace, payload)
    assert r.ok, (r.error, r.stderr_tail)
    sid = r.data["silence_id"]
    assert r.data["matchers"] == ['alertname="DiskFull"', 'service="db"']
    assert r.data["affected_alerts"] == 1 and r.data["url"] == f"{am.url}/#/silences/{sid}"
    stored = am.silences[sid]
    assert stored["createdBy"] == "nexflow" and stored["comment"] == "resizing the volume"
    assert when(stored["endsAt"]) - when(stored["startsAt"]) == timedelta(hours=1, minutes=30)
    assert stored["matchers"][0] == {
        "name": "alertname",
        "value": "DiskFull",
        "isRegex": False,
        "isEqual": True,
    }
    disk = next(a for a in am.alerts if a["labels"]["alertname"] == "DiskFull")
    assert disk["status"]["silencedBy"] == [sid]

    r = await ask(am, workspace, {"action": "expire", "silence_id": sid})
    assert r.ok, r.error
    assert r.data == {"action": "expire", "silence_id": sid, "expired": True}
    assert am.silences[sid]["status"]["state"] == "expired"
    assert disk["status"]["state"] == "active"
    again = await ask(am, workspace, {"action": "expire", "silence_id": sid})
    assert "Alertmanager answered 500" in failure(again) and "already expired" in failure(again)


async def test_silence_with_an_end_time(am: FakeAlertmanager, workspace: Path) -> None:
    payload = {
        "action": "silence",
        "matchers": ['instance!~"db-.*"', "alertname=HighLatency"],
        "ends_at": "2099-01-01T00:00:00Z",
        "starts_at": "2098-12-31T22:00:00Z",
        "comment": "planned maintenance",
        "created_by": "mona",
    }
    r = await ask(am, workspace, payload)
    assert r.ok, r.error
    stored = am.silences[r.data["silence_id"]]
    assert stored["startsAt"] == "2098-12-31T22:00:00.000Z"
    assert stored["endsAt"] == "2099-01-01T00:00:00.000Z"
    assert stored["matchers"][0]["isRegex"] is True and stored["matchers"][0]["isEqual"] is False


@pytest.mark.parametrize(
    ("payload", "why"),
    [
        ({"matchers": ["no operator"]}, 'must look like name="value"'),
        ({"matchers": ['a=~"("']}, "not a regular expression"),
        (
            {
                "action": "silence",
                "matchers": ['alertname=~".*"'],
                "duration": "1h",
                "comment": "x",
            },
            "would match every alert",
        ),
        ({"action": "silence", "matchers": ["a=b"], "duration": "1h"}, "'comment' must say why"),
        ({"action": "silence", "matchers": ["a=b"], "comment": "x"}, "give 'duration'"),
        ({"action": "silence", "matchers": [], "duration": "1h", "comment": "x"}, "at least one"),
        (
            {"action": "silence", "matchers": ["a=b"], "duration": "2 hours", "comment": "x"},
            "'duration' must look like",
        ),
        (
            {"action": "silence", "matchers": ["a=b"], "duration": "31d", "comment": "x"},
            "at most 30 days",
        ),
        (
            {
                "action": "silence",
                "matchers": ["a=b"],
                "ends_at": "2001-01-01T00:00:00Z",
                "comment": "x",
            },
            "in the future",
        ),
        ({"action": "expire", "silence_id": "../../status"}, "'silence_id' must be a silence id"),
    ],
)
async def test_bad_input_is_refused(
    am: FakeAlertmanager, workspace: Path, payload: dict[str, Any], why: str
) -> None:
    r = await ask(am, workspace, payload)
    assert why in refusal(r)
    assert am.requests == []


@pytest.mark.parametrize(
    ("payload", "fail", "expected"),
    [
        ({"action": "expire", "silence_id": "deadbeef-0000"}, None, "404 to DELETE"),
        ({"action": "alerts"}, 503, "answered 503 to GET /api/v2/alerts"),
        ({"action": "silences"}, 500, "the service failed"),
    ],
)
async def test_service_errors(
    am: FakeAlertmanager, workspace: Path, payload: dict[str, Any], fail: int | None, expected: str
) -> None:
    if fail:
        am.fail["/api/v2/"] = fail
    r = await ask(am, workspace, payload)
    assert expected in failure(r)


# -- through the gateway: silences wait for the user -------------------------------------

SILENCE = {
    "action": "silence",
    "matchers": ["alertname=DiskFull"],
    "duration": "2h",
    "comment": "resizing the volume",
}


async def test_gateway_silence_after_confirmation(am: FakeAlertmanager, home: Path) -> None:
    async with skill_gateway(home, {"alertmanager": {"ALERTMANAGER_URL": am.url}}) as gw:
        reply, tool, card = await call_skill(gw, "alertmanager", SILENCE, approve=True)
    assert card is not None and "alertname=DiskFull" in card["detail"]
    sid = tool_json(tool)["silence_id"]
    assert am.silences[sid]["comment"] == "resizing the volume"
    assert sid in reply["reply"]


async def test_gateway_declined_silence_sends_nothing(am: FakeAlertmanager, home: Path) -> None:
    before = set(am.silences)
    async with skill_gateway(home, {"alertmanager": {"ALERTMANAGER_URL": am.url}}) as gw:
        _, tool, card = await call_skill(gw, "alertmanager", SILENCE, approve=False)
        assert card is not None
        assert "declined" in tool
        # Listing is a read: it runs without asking.
        _, listed, card = await call_skill(gw, "alertmanager", {"action": "silences"})
    assert card is None and tool_json(listed)["count"] == 1
    assert set(am.silences) == before
    assert am.seen("POST", "/api/v2/silences") == []


async def test_gateway_expire_after_confirmation(am: FakeAlertmanager, home: Path) -> None:
    payload = {"action": "expire", "silence_id": OLD}
    async with skill_gateway(home, {"alertmanager": {"ALERTMANAGER_URL": am.url}}) as gw:
        _, tool, card = await call_skill(gw, "alertmanager", payload, approve=True)
    assert card is not None and OLD in card["detail"]
    assert tool_json(tool)["expired"] is True
    assert am.silences[OLD]["status"]["state"] == "expired"
