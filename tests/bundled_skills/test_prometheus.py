"""The bundled ``prometheus`` skill against a loopback fake of Prometheus' HTTP API."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from bundled_support import call_skill, failure, refusal, run_skill, skill_gateway, tool_json
from fakes_monitoring import FakePrometheus

from nexflow.skills.result import RunResult


@pytest.fixture
def prom() -> Iterator[FakePrometheus]:
    with FakePrometheus() as fake:
        yield fake


async def ask(
    fake: FakePrometheus, workspace: Path, payload: dict[str, Any], **env: str
) -> RunResult:
    grants = {"PROMETHEUS_URL": env.pop("url", fake.url), **env}
    return await run_skill("prometheus", payload, workspace, grants)


async def test_instant_query(prom: FakePrometheus, workspace: Path) -> None:
    r = await ask(prom, workspace, {"query": 'up{job="api"}', "time": "2026-12-01T12:00:00Z"})
    assert r.ok, (r.error, r.stderr_tail)
    assert r.data["result_type"] == "vector" and r.data["count"] == 2
    at = 1796126400.0  # 2026-12-01T12:00:00Z
    assert r.data["series"] == [
        {"series": 'up{instance="api-1:9100",job="api"}', "value": f"{1 + at % 7:g}", "at": at},
        {"series": 'up{instance="api-2:9100",job="api"}', "value": f"{at % 7:g}", "at": at},
    ]
    assert prom.requests[-1].query == {"query": ['up{job="api"}'], "time": ["1796126400.000"]}


async def test_many_series_are_capped(prom: FakePrometheus, workspace: Path) -> None:
    r = await ask(prom, workspace, {"action": "query", "query": "http_requests_total", "limit": 5})
    assert r.ok, r.error
    assert r.data["count"] == 40 and len(r.data["series"]) == 5 and r.data["truncated"] is True
    assert r.data["series"][0]["series"] == 'http_requests_total{code="200",pod="web-0"}'


async def test_range_query_is_summarised(prom: FakePrometheus, workspace: Path) -> None:
    payload = {
        "action": "query_range",
        "query": 'up{instance="api-1:9100"}',
        "start": 1796122800,
        "end": "2026-12-01T12:00:00Z",
        "step": "1m",
        "points": 4,
    }
    r = await ask(prom, workspace, payload)
    assert r.ok, r.error
    (series,) = r.data["series"]
    assert series["samples"] == 61  # 11:00 to 12:00 every minute
    assert len(series["points"]) == 4
    assert series["points"][0][0] == 1796122800 and series["points"][-1][0] == 1796126400
    assert (series["min"], series["max"]) == ("1", "7")
    assert prom.requests[-1].query["step"] == ["60"]
    r = await ask(prom, workspace, {"action": "query_range", "query": "up", "start": "-2h"})
    assert r.ok, r.error
    step = float(prom.requests[-1].query["step"][0])
    assert step == 29 and r.data["series"][0]["samples"] == 249  # ~250 samples over 2 h


async def test_range_answer_is_capped_in_points(prom: FakePrometheus, workspace: Path) -> None:
    payload = {"action": "query_range", "query": "http_requests_total", "start": "-1h"}
    r = await ask(prom, workspace, {**payload, "step": "10s", "points": 200, "limit": 100})
    assert r.ok, r.error
    assert r.data["count"] == 40 and len(r.data["series"]) == 40
    assert {len(s["points"]) for s in r.data["series"]} == {75}  # 3000 points in all
    assert {s["samples"] for s in r.data["series"]} == {361}


async def test_targets_and_alerts(prom: FakePrometheus, workspace: Path) -> None:
    r = await ask(prom, workspace, {"action": "targets", "health": "down"})
    assert r.ok, r.error
    assert r.data["counts"] == {"down": 1, "up": 2}
    assert r.data["items"] == [
        {
            "job": "api",
            "instance": "api-2:9100",
            "health": "down",
            "last_error": "connection refused",
            "last_scrape": "2026-12-01T11:59:50Z",
            "scrape_url": "http://api-2:9100/metrics",
        }
    ]
    r = await ask(prom, workspace, {"action": "alerts", "state": "firing"})
    assert r.data["items"][0]["name"] == "InstanceDown"
    assert r.data["items"][0]["labels"] == {"instance": "api-2:9100", "severity": "page"}


async def test_basic_auth_from_the_url(workspace: Path) -> None:
    with FakePrometheus(basic=("grafana", "s3cret")) as fake:
        url = fake.url.replace("http://", "http://grafana:s3cret@")
        r = await ask(fake, workspace, {"query": "up"}, url=url)
        assert r.ok, r.error
        assert r.data["count"] == 3
        r = await ask(fake, workspace, {"query": "up"}, url=fake.url)
    said = failure(r)
    assert "Prometheus answered 401" in said and "s3cret" not in said


async def test_optional_bearer_token(workspace: Path) -> None:
    with FakePrometheus() as fake:
        r = await ask(fake, workspace, {"query": "up"}, PROMETHEUS_TOKEN="tok-123")
        assert r.ok, r.error
        assert fake.requests[-1].headers["authorization"] == "Bearer tok-123"


@pytest.mark.parametrize(
    ("payload", "fail", "expected"),
    [
        ({"query": "rate(up[5m]"}, None, "answered 400 to GET /api/v1/query: 1:1: parse error"),
        ({"query": "up"}, 503, "answered 503"),
        ({"action": "query_range", "query": "up", "start": "-1h"}, 500, "answered 500"),
    ],
)
async def test_service_errors(
    prom: FakePrometheus, workspace: Path, payload: dict[str, Any], fail: int | None, expected: str
) -> None:
    if fail:
        prom.fail["/api/v1/"] = fail
    r = await ask(prom, workspace, payload)
    assert expected in failure(r)


@pytest.mark.parametrize(
    ("payload", "why"),
    [
        ({"query": ""}, "'query' must be a PromQL expression"),
        ({"query": "up", "time": "yesterday"}, "'time' must be Unix seconds"),
        (
            {"action": "query_range", "query": "up", "step": "5 minutes"},
            "'step' must be a duration",
        ),
        (
            {"action": "query_range", "query": "up", "start": "now", "end": "now-1h"},
            "before 'end'",
        ),
        (
            {"action": "query_range", "query": "up", "start": "-30d", "step": "1s"},
            "samples per series; make 'step' larger",
        ),
    ],
)
async def test_bad_input_is_refused(
    prom: FakePrometheus, workspace: Path, payload: dict[str, Any], why: str
) -> None:
    r = await ask(prom, workspace, payload)
    assert why in refusal(r)
    assert prom.requests == []


async def test_gateway_runs_a_query(prom: FakePrometheus, home: Path) -> None:
    async with skill_gateway(home, {"prometheus": {"PROMETHEUS_URL": prom.url}}) as gw:
        reply, tool, card = await call_skill(gw, "prometheus", {"query": 'up{job="db"}'})
    assert card is None
    assert tool_json(tool)["series"][0]["series"] == 'up{instance="db-1:9187",job="db"}'
    assert "db-1:9187" in reply["reply"]
