"""The host feed puts real CPU load and gateway log lines into server-monitor panels."""

import json
from pathlib import Path

from nexflow.panels.runtime.feeds import cpu_percent, log_line, read_cpu_times
from nexflow.testing.harness import GatewayHarness


def test_cpu_times_from_proc() -> None:
    first = read_cpu_times()
    assert first is not None and 0 <= first[0] <= first[1]
    busy = sum(i * i for i in range(200_000))  # some work between the two reads
    second = read_cpu_times()
    assert second is not None and busy > 0
    assert 0.0 <= cpu_percent(first, second) <= 100.0


def test_cpu_times_without_proc(tmp_path: Path) -> None:
    assert read_cpu_times(tmp_path / "missing") is None
    assert cpu_percent((10, 100), (60, 200)) == 50.0


def test_log_lines_are_compact() -> None:
    raw = json.dumps({"event": "turn_done", "level": "info", "timestamp": "2026-11-22T04:00:01Z"})
    assert log_line(raw) == "04:00:01 INFO turn_done"
    assert log_line("not json") == "not json"


async def test_feed_updates_server_monitor_only(gateway: GatewayHarness) -> None:
    assert gateway.app is not None and gateway.app.host_feed is not None
    await gateway.http.post("/api/v1/panels", json={"template": "server-monitor"})
    await gateway.http.post("/api/v1/panels", json={"template": "todo"})
    fed = await gateway.app.host_feed.feed_once(42.5, ["04:00:01 INFO turn_done"])
    assert fed == 1
    panel = (await gateway.http.get("/api/v1/panels/server-monitor")).json()
    assert panel["state"]["cpu_load"] == 42.5
    assert panel["state"]["logs"] == ["04:00:01 INFO turn_done"]
    versions = (await gateway.http.get("/api/v1/panels/server-monitor/versions")).json()
    assert versions[0]["kind"] == "feed"
    snapshot = (await gateway.http.get("/api/v1/panels/server-monitor/snapshot")).json()
    assert "42.5" in snapshot["text"]
