"""Sandbox benchmark: prints median and p90 for the operations that matter.

    .venv/bin/python bench/sandbox_bench.py [--rounds N]

Targets: handler call in a fresh instance <= 2 ms median, batch of ~20
bindings <= 1 ms median. Builds the guest first if needed.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from nexflow.panels import LayoutEngine, parse
from nexflow.sandbox import SandboxLimits, build_guest
from nexflow.sandbox.engine import SandboxEngine

HANDLER = """
    $state.status = "rebooting";
    $state.logs.push({level: 'info', text: 'restart requested', force: force});
    $emit('toast', 'Restart sequence initiated');
    $view.LogStream.setFilter($args.keyword);
"""
STATE = {"cpu_load": 91, "status": "idle", "logs": [{"level": "info", "text": "boot"}] * 20}
BINDINGS = [
    "$state.cpu_load",
    "$state.cpu_load > 80 ? 'down' : 'up'",
    "$state.status",
    "$state.logs",
    "`${$state.cpu_load}%`",
] * 4
SCALAR_BINDINGS = [b for b in BINDINGS if b != "$state.logs"] + ["$state.logs.length"] * 4


def measure(label: str, fn: Callable[[], object], rounds: int) -> None:
    fn()  # warm-up
    samples = []
    for _ in range(rounds):
        start = time.perf_counter()
        fn()
        samples.append((time.perf_counter() - start) * 1000)
    samples.sort()
    p90 = samples[min(len(samples) - 1, int(len(samples) * 0.9))]
    print(f"{label:<44} median {statistics.median(samples):8.3f} ms   p90 {p90:8.3f} ms")


SERVER_MONITOR = Path(__file__).resolve().parents[1] / "panels" / "server-monitor.nxml"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rounds", type=int, default=200)
    rounds = parser.parse_args().rounds
    guest = build_guest()
    with tempfile.TemporaryDirectory() as tmp:
        cache = Path(tmp)
        SandboxEngine(cache_dir=cache, guest_path=guest).close()  # populate the cache

        def cold() -> None:
            SandboxEngine(guest_path=guest).close()

        def from_cache() -> None:
            SandboxEngine(cache_dir=cache, guest_path=guest).close()

        measure("cold compile (no cache) + snapshot", cold, max(3, rounds // 40))
        measure("load from precompiled cache + snapshot", from_cache, max(10, rounds // 10))
        with SandboxEngine(cache_dir=cache, guest_path=guest) as engine:
            args = {"force": True, "keyword": "error"}
            measure(
                "handler call (fresh instance)",
                lambda: engine.run_handler(HANDLER, STATE, args),
                rounds,
            )
            measure(
                f"batch eval of {len(BINDINGS)} bindings",
                lambda: engine.eval_batch(BINDINGS, STATE),
                rounds,
            )
            measure(
                f"batch eval of {len(SCALAR_BINDINGS)} scalar bindings",
                lambda: engine.eval_batch(SCALAR_BINDINGS, STATE),
                rounds,
            )
            panel = LayoutEngine().layout(parse(SERVER_MONITOR.read_text(encoding="utf-8")))
            panel_state = {
                "cpu_load": 42,
                "status": "idle",
                "logs": [f"04:00:{i:02d} INFO turn_done" for i in range(50)],
            }
            measure(
                f"server-monitor bindings ({len(panel.expressions())}, 50 log lines)",
                lambda: engine.eval_batch(panel.expressions(), panel_state),
                rounds,
            )
            fuel = engine.run_handler(HANDLER, STATE, args).fuel_used
            print(f"fuel used by the handler: {fuel}")
            limits = SandboxLimits(fuel=500_000_000, wall_time_ms=10_000)
            start = time.perf_counter()
            try:
                engine.run_handler("for (;;) {}", {}, {}, limits)
            except Exception as e:
                elapsed = time.perf_counter() - start
                print(f"500M fuel of a tight loop: {elapsed * 1000:.0f} ms ({type(e).__name__})")


if __name__ == "__main__":
    main()
