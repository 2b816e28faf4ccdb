from __future__ import annotations

import pytest

from nexflow.sandbox import EvalResult, JSONValue, OutOfFuel, SandboxLimits
from nexflow.sandbox.engine import SandboxEngine

STATE: dict[str, JSONValue] = {"cpu_load": 91, "status": "busy", "logs": ["a", "b"]}


def test_seed_bindings(sandbox: SandboxEngine) -> None:
    results = sandbox.eval_batch(
        [
            "$state.cpu_load",
            "$state.cpu_load > 80 ? 'down' : 'up'",
            "$state.status",
            "$state.logs",
            "`${$state.cpu_load}%`",
        ],
        STATE,
    )

    assert results == [
        EvalResult(ok=True, value=91),
        EvalResult(ok=True, value="down"),
        EvalResult(ok=True, value="busy"),
        EvalResult(ok=True, value=["a", "b"]),
        EvalResult(ok=True, value="91%"),
    ]


def test_errors_stay_per_expression(sandbox: SandboxEngine) -> None:
    results = sandbox.eval_batch(
        ["$state.missing.deep", "(", "$state.status.toUpperCase()", "undefined", "1n"], STATE
    )

    assert [r.ok for r in results] == [False, False, True, True, False]
    assert results[0].error is not None and results[0].error.startswith("TypeError")
    assert results[1].error is not None and results[1].error.startswith("SyntaxError")
    assert results[2].value == "BUSY"
    assert results[3].value is None


def test_bindings_cannot_change_state_for_later_bindings(sandbox: SandboxEngine) -> None:
    results = sandbox.eval_batch(
        ["$state.logs.push('c')", "$state.cpu_load = 0", "$state.logs.length", "$state.cpu_load"],
        STATE,
    )

    assert results[0].ok is False
    assert results[2:] == [EvalResult(ok=True, value=2), EvalResult(ok=True, value=91)]


def test_empty_batch(sandbox: SandboxEngine) -> None:
    assert sandbox.eval_batch([], STATE) == []


def test_an_endless_binding_fails_the_batch(sandbox: SandboxEngine) -> None:
    with pytest.raises(OutOfFuel):
        sandbox.eval_batch(
            ["1", "(() => { for (;;) {} })()"], STATE, SandboxLimits(fuel=50_000_000)
        )

    assert sandbox.eval_batch(["1 + 1"], STATE) == [EvalResult(ok=True, value=2)]


def test_bindings_have_no_capabilities(sandbox: SandboxEngine) -> None:
    [result] = sandbox.eval_batch(["$fs.read('x')"], STATE)

    assert result.ok is False
    assert result.error is not None and "not granted" in result.error
