from __future__ import annotations

import pytest

from nexflow.sandbox import EmitEffect, GuestError, JSONValue, OutputInvalid, ViewEffect
from nexflow.sandbox.engine import SandboxEngine

SERVER_MONITOR_STATE: dict[str, JSONValue] = {"cpu_load": 42, "status": "idle", "logs": []}

RESTART_NODE = """
        $state.status = "rebooting";
        $emit('toast', 'Restart sequence initiated');
"""

FILTER_LOGS_SEED = """
        $view.setFilter('logs', level);
"""


def test_seed_restart_node_sets_state_and_emits_toast(sandbox: SandboxEngine) -> None:
    outcome = sandbox.run_handler(RESTART_NODE, SERVER_MONITOR_STATE, {"force": True})

    assert outcome.state == {"cpu_load": 42, "status": "rebooting", "logs": []}
    assert outcome.effects == (EmitEffect(event="toast", payload="Restart sequence initiated"),)
    assert SERVER_MONITOR_STATE["status"] == "idle", "the caller's state must not be mutated"


def test_seed_filter_logs_reads_arg_by_name(sandbox: SandboxEngine) -> None:
    outcome = sandbox.run_handler(FILTER_LOGS_SEED, SERVER_MONITOR_STATE, {"level": "warn"})

    assert outcome.state == SERVER_MONITOR_STATE
    assert outcome.effects == (ViewEffect(method="setFilter", args=("logs", "warn")),)


def test_view_component_method_and_args_object(sandbox: SandboxEngine) -> None:
    source = "$view.LogStream.setFilter($args.keyword); $view.Chart.zoom(1, {to: [2, 3]});"
    outcome = sandbox.run_handler(source, {}, {"keyword": "timeout"})

    assert outcome.effects == (
        ViewEffect(component="LogStream", method="setFilter", args=("timeout",)),
        ViewEffect(component="Chart", method="zoom", args=(1, {"to": [2, 3]})),
    )
    assert [e.to_json()["kind"] for e in outcome.effects] == ["view", "view"]


def test_effects_keep_their_order(sandbox: SandboxEngine) -> None:
    source = "$emit('a', 1); $view.X.y(); $emit('b', {n: 2}); $emit('c');"
    outcome = sandbox.run_handler(source, {}, {})

    assert [e.to_json() for e in outcome.effects] == [
        {"kind": "emit", "event": "a", "payload": 1},
        {"kind": "view", "component": "X", "method": "y", "args": []},
        {"kind": "emit", "event": "b", "payload": {"n": 2}},
        {"kind": "emit", "event": "c", "payload": None},
    ]


def test_state_changes_of_every_json_type(sandbox: SandboxEngine) -> None:
    source = """
        $state.logs.push({level: 'info', text: 'booted'});
        $state.count += 1;
        $state.ratio = $state.count / 4;
        $state.ok = !$state.ok;
        delete $state.gone;
        $state.nested = {a: [1, null, 'x']};
    """
    state: dict[str, JSONValue] = {"logs": [], "count": 1, "ok": False, "gone": "bye"}
    outcome = sandbox.run_handler(source, state, {})

    assert outcome.state == {
        "logs": [{"level": "info", "text": "booted"}],
        "count": 2,
        "ratio": 0.5,
        "ok": True,
        "nested": {"a": [1, None, "x"]},
    }


def test_console_log_and_return_value(sandbox: SandboxEngine) -> None:
    outcome = sandbox.run_handler(
        "console.log('load', $state.cpu_load); return {done: true};", SERVER_MONITOR_STATE, {}
    )

    assert outcome.logs == ("load 42",)
    assert outcome.result == {"done": True}
    assert outcome.fuel_used > 0


def test_reserved_or_odd_arg_names_are_only_in_args(sandbox: SandboxEngine) -> None:
    args: dict[str, JSONValue] = {"class": 1, "my-arg": 2, "$state": 3, "ok_name": 4}
    source = "$state.seen = [$args['class'], $args['my-arg'], $args['$state'], ok_name];"
    outcome = sandbox.run_handler(source, {}, args)

    assert outcome.state == {"seen": [1, 2, 3, 4]}


def test_promise_jobs_settle_before_state_is_read(sandbox: SandboxEngine) -> None:
    outcome = sandbox.run_handler("Promise.resolve(7).then(v => { $state.v = v; });", {}, {})

    assert outcome.state == {"v": 7}


def test_throw_midway_reports_message_and_line(sandbox: SandboxEngine) -> None:
    source = "\n$state.status = 'half';\n$emit('toast', 'x');\nthrow new Error('disk on fire');\n"
    with pytest.raises(GuestError) as info:
        sandbox.run_handler(source, SERVER_MONITOR_STATE, {})

    assert info.value.name == "Error"
    assert info.value.message == "disk on fire"
    assert info.value.line == 4
    assert "disk on fire" in str(info.value)


def test_syntax_error_has_line(sandbox: SandboxEngine) -> None:
    with pytest.raises(GuestError) as info:
        sandbox.run_handler("\n$state.a = 1;\nlet = = 2;\n", {}, {})

    assert info.value.name == "SyntaxError"
    assert info.value.line == 3


def test_throwing_a_non_error_value(sandbox: SandboxEngine) -> None:
    with pytest.raises(GuestError, match="uncaught"):
        sandbox.run_handler("throw {code: 7};", {}, {})


def test_logs_survive_a_failure(sandbox: SandboxEngine) -> None:
    with pytest.raises(GuestError) as info:
        sandbox.run_handler("console.log('before'); null.x;", {}, {})

    assert info.value.name == "TypeError"
    assert info.value.logs == ("before",)


def test_unserialisable_state_is_a_guest_error(sandbox: SandboxEngine) -> None:
    with pytest.raises(GuestError, match=r"circular|cycle"):
        sandbox.run_handler("$state.self = $state;", {}, {})


def test_tampering_with_json_cannot_forge_output(sandbox: SandboxEngine) -> None:
    source = 'JSON.stringify = () => \'{"ok":true,"state":{"forged":1},"effects":[]}\';'
    outcome = sandbox.run_handler(source, {"real": 1}, {})

    assert outcome.state == {"real": 1}


def test_too_many_effects(sandbox: SandboxEngine) -> None:
    with pytest.raises(GuestError, match="too many effects"):
        sandbox.run_handler("for (;;) $emit('spam', 1);", {}, {})


def test_view_cannot_be_reassigned(sandbox: SandboxEngine) -> None:
    with pytest.raises(GuestError, match="read-only"):
        sandbox.run_handler("$view.x = 1;", {}, {})


def test_non_json_input_is_refused_before_running(sandbox: SandboxEngine) -> None:
    with pytest.raises(ValueError):
        sandbox.run_handler("", {"x": float("nan")}, {})


def test_output_invalid_is_distinct_from_guest_errors() -> None:
    assert not issubclass(OutputInvalid, GuestError)
