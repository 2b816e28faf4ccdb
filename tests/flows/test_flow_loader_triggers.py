"""Cron triggers in flow files: validated at load time with line:column errors."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from nexflow.flows import FlowInvalid, load_flow_text
from nexflow.flows.triggers import fire_run_id, next_fire

NODES = "nodes:\n  a: {type: transform, expr: '1'}\n"


def issues(text: str) -> list[str]:
    with pytest.raises(FlowInvalid) as info:
        load_flow_text(text, "flows/t.yaml")
    return [str(i) for i in info.value.issues]


def test_flow_triggers_load_with_zone_and_args() -> None:
    flow = load_flow_text(
        "name: t\ninputs:\n  n: {type: integer}\ntriggers:\n"
        '  - {cron: "0 9 * * 1-5", timezone: Europe/Moscow, args: {n: 2}}\n'
        '  - cron: "*/15  *  * * *"\n' + NODES
    )
    first, second = flow.triggers
    assert (first.cron, first.timezone, first.args) == ("0 9 * * 1-5", "Europe/Moscow", {"n": 2})
    assert (second.cron, second.timezone, second.args) == ("*/15 * * * *", "UTC", {})
    # 09:00 Moscow (UTC+3) on a weekday: 2026-12-07 is a Monday
    after = datetime(2026, 12, 5, 12, 0, tzinfo=UTC)  # a Saturday
    assert next_fire(first.cron, first.timezone, after) == datetime(2026, 12, 7, 6, 0, tzinfo=UTC)


def test_flow_triggers_refuse_a_bad_cron_at_its_line() -> None:
    found = issues(
        'name: t\ntriggers:\n  - cron: "0 25 * * *"\n  - cron: "1 2 3"\n'
        '  - cron: "0 9 * * 1-5"\n' + NODES
    )
    assert len(found) == 2, found
    assert found[0].startswith("flows/t.yaml:3:5: triggers.0.cron: invalid cron expression")
    assert "25" in found[0]
    assert found[1].startswith("flows/t.yaml:4:5: triggers.1.cron: cron '1 2 3' must have 5")


def test_flow_triggers_refuse_a_bad_timezone_at_its_line() -> None:
    found = issues(
        'name: t\ntriggers:\n  - cron: "0 9 * * *"\n    timezone: Mars/Olympus\n' + NODES
    )
    assert found == [
        "flows/t.yaml:4:5: triggers.0.timezone: unknown time zone 'Mars/Olympus'; "
        "use an IANA name like Europe/Berlin"
    ]


def test_flow_triggers_refuse_args_that_do_not_fit_the_inputs() -> None:
    found = issues(
        "name: t\ninputs:\n  n: {type: integer, required: true}\ntriggers:\n"
        '  - {cron: "0 9 * * *", args: {m: 1}}\n' + NODES
    )
    assert any(f.startswith("flows/t.yaml:5:") and "unknown input 'm'" in f for f in found)
    assert any("missing required input 'n'" in f for f in found)


def test_flow_trigger_run_id_is_the_same_for_the_same_fire() -> None:
    due = datetime(2026, 12, 7, 6, 0, tzinfo=UTC)
    run = fire_run_id("u1", "daily", {"n": 1}, due)
    assert run.startswith("cron-daily-20261207T060000Z-")
    assert run == fire_run_id("u1", "daily", {"n": 1}, due.astimezone())
    assert run != fire_run_id("u2", "daily", {"n": 1}, due)  # another owner's flow
    assert run != fire_run_id("u1", "daily", {"n": 2}, due)
    assert run != fire_run_id("u1", "daily", {"n": 1}, due.replace(minute=1))
