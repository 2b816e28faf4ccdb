"""Hostile code: each attack fails with the right exception, quickly, and the
engine keeps working afterwards."""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest

from nexflow.sandbox import (
    GuestError,
    MemoryLimitExceeded,
    OutOfFuel,
    OutputInvalid,
    SandboxError,
    SandboxLimits,
    WallTimeExceeded,
)
from nexflow.sandbox.engine import SandboxEngine

MiB = 1024 * 1024


@pytest.fixture(autouse=True)
def engine_still_works(sandbox: SandboxEngine) -> Iterator[None]:
    yield
    outcome = sandbox.run_handler("$state.n += 1; $emit('ok', $state.n);", {"n": 1}, {})
    assert outcome.state == {"n": 2}


def run_timed(
    sandbox: SandboxEngine, source: str, limits: SandboxLimits, error: type[SandboxError]
) -> tuple[SandboxError, float]:
    start = time.perf_counter()
    with pytest.raises(error) as info:
        sandbox.run_handler(source, {"keep": True}, {}, limits)
    return info.value, time.perf_counter() - start


def test_infinite_loop_runs_out_of_fuel(sandbox: SandboxEngine) -> None:
    _, elapsed = run_timed(sandbox, "while (true) {}", SandboxLimits(fuel=100_000_000), OutOfFuel)

    assert elapsed < 1.0


def test_infinite_loop_hits_wall_time(sandbox: SandboxEngine) -> None:
    limits = SandboxLimits(fuel=10**15, wall_time_ms=150)
    _, elapsed = run_timed(sandbox, "for (;;) {}", limits, WallTimeExceeded)

    assert 0.14 < elapsed < 1.0


def test_default_limits_stop_an_infinite_loop(sandbox: SandboxEngine) -> None:
    _, elapsed = run_timed(sandbox, "let i = 0; while (true) { i++ }", SandboxLimits(), OutOfFuel)

    assert elapsed < 2.0


def test_memory_bomb_of_arrays(sandbox: SandboxEngine) -> None:
    source = "const keep = []; for (;;) keep.push(new Array(100000).fill(1.5));"
    limits = SandboxLimits(fuel=10**12, memory_bytes=32 * MiB, wall_time_ms=5000)
    _, elapsed = run_timed(sandbox, source, limits, MemoryLimitExceeded)

    assert elapsed < 2.0


def test_memory_bomb_of_buffers(sandbox: SandboxEngine) -> None:
    source = "const keep = []; for (;;) keep.push(new ArrayBuffer(1 << 20));"
    limits = SandboxLimits(fuel=10**12, memory_bytes=16 * MiB, wall_time_ms=5000)
    run_timed(sandbox, source, limits, MemoryLimitExceeded)


def test_caught_out_of_memory_still_fails_the_call(sandbox: SandboxEngine) -> None:
    source = "try { const k = []; for (;;) k.push(new ArrayBuffer(1 << 20)); } catch (e) {}"
    limits = SandboxLimits(fuel=10**12, memory_bytes=16 * MiB)
    run_timed(sandbox, source, limits, MemoryLimitExceeded)


def test_string_doubling(sandbox: SandboxEngine) -> None:
    limits = SandboxLimits(fuel=10**12, wall_time_ms=5000)
    error, _ = run_timed(sandbox, "let s = 'x'; for (;;) s += s;", limits, SandboxError)

    assert isinstance(error, MemoryLimitExceeded | GuestError)


def test_deep_recursion_is_a_range_error(sandbox: SandboxEngine) -> None:
    error, elapsed = run_timed(
        sandbox, "function f(n) { return f(n + 1) + 1 }\nf(0);", SandboxLimits(), GuestError
    )

    assert isinstance(error, GuestError)
    assert error.name == "RangeError"
    assert elapsed < 1.0


def test_recursion_depth_is_usable(sandbox: SandboxEngine) -> None:
    source = "function depth(n) { return n === 0 ? 0 : 1 + depth(n - 1) }\n$state.d = depth(300);"
    assert sandbox.run_handler(source, {}, {}).state == {"d": 300}


def test_huge_output(sandbox: SandboxEngine) -> None:
    limits = SandboxLimits(fuel=10**11, wall_time_ms=5000, max_output_bytes=1 * MiB)
    run_timed(sandbox, "$state.big = 'x'.repeat(3 * 1024 * 1024);", limits, OutputInvalid)


def test_huge_input_beyond_memory(sandbox: SandboxEngine) -> None:
    with pytest.raises(MemoryLimitExceeded):
        sandbox.run_handler(
            "", {"blob": "x" * (20 * MiB)}, {}, SandboxLimits(memory_bytes=16 * MiB)
        )


@pytest.mark.parametrize(
    "probe",
    [
        "typeof std",
        "typeof os",
        "typeof require",
        "typeof process",
        "typeof fetch",
        "typeof XMLHttpRequest",
        "typeof WebSocket",
        "typeof Deno",
        "typeof scriptArgs",
        "typeof globalThis.print",
        "typeof WebAssembly",
    ],
)
def test_host_modules_do_not_exist(sandbox: SandboxEngine, probe: str) -> None:
    outcome = sandbox.run_handler(f"$state.t = {probe};", {}, {})

    assert outcome.state == {"t": "undefined"}


@pytest.mark.parametrize("module", ["std", "os", "fs", "/etc/passwd", "node:fs"])
def test_imports_fail(sandbox: SandboxEngine, module: str) -> None:
    source = (
        f"import({module!r})"
        ".then(m => { $state.m = Object.keys(m) }, e => { $state.e = String(e) });"
    )
    outcome = sandbox.run_handler(source, {}, {})

    assert "m" not in outcome.state
    assert "could not load module" in str(outcome.state["e"])


def test_static_import_is_a_syntax_error(sandbox: SandboxEngine) -> None:
    with pytest.raises(GuestError) as info:
        sandbox.run_handler("import * as std from 'std';", {}, {})

    assert info.value.name == "SyntaxError"


def test_clock_and_randomness_are_deterministic(sandbox: SandboxEngine) -> None:
    source = (
        "$state.now = Date.now(); $state.iso = new Date().toISOString(); $state.r = Math.random();"
    )
    first = sandbox.run_handler(source, {}, {}).state
    second = sandbox.run_handler(source, {}, {}).state

    assert first["now"] == 0
    assert first["iso"] == "1970-01-01T00:00:00.000Z"
    assert first == second


def test_globals_do_not_leak_between_calls(sandbox: SandboxEngine) -> None:
    sandbox.run_handler("globalThis.leak = 42; Object.prototype.polluted = 1;", {}, {})
    outcome = sandbox.run_handler("$state.t = [typeof leak, ({}).polluted === undefined];", {}, {})

    assert outcome.state == {"t": ["undefined", True]}


def test_limits_are_validated() -> None:
    with pytest.raises(ValueError):
        SandboxLimits(fuel=0)
    with pytest.raises(ValueError):
        SandboxLimits(memory_bytes=1024)
    with pytest.raises(ValueError):
        SandboxLimits(wall_time_ms=-1)
