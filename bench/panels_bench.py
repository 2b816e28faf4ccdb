"""parse + validate + layout of the seed's server-monitor panel.

Usage: ``python bench/panels_bench.py [iterations]``. Prints median and p90 in
milliseconds for the whole pipeline and for each step. Target: median <= 1 ms.
"""

from __future__ import annotations

import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from nexflow.panels import LayoutEngine, NexusPanel, parse, validate  # noqa: E402


def _measure(fn: Callable[[], object], iterations: int) -> tuple[float, float]:
    samples = []
    for _ in range(iterations):
        start = time.perf_counter_ns()
        fn()
        samples.append((time.perf_counter_ns() - start) / 1e6)
    samples.sort()
    return statistics.median(samples), samples[int(len(samples) * 0.9)]


def main() -> None:
    iterations = int(sys.argv[1]) if len(sys.argv) > 1 else 2000
    xml = (ROOT / "panels" / "server-monitor.nxml").read_text(encoding="utf-8")
    engine = LayoutEngine()
    panel: NexusPanel = parse(xml)
    tree = engine.layout(panel)
    values = dict.fromkeys(tree.expressions(), 1)

    def pipeline() -> None:
        p = parse(xml)
        if any(d.severity == "error" for d in validate(p)):
            raise SystemExit("server-monitor does not validate")
        engine.layout(p)

    for _ in range(200):  # warm-up
        pipeline()
    rows = [
        ("parse+validate+layout", pipeline),
        ("parse", lambda: parse(xml)),
        ("validate", lambda: validate(panel)),
        ("layout", lambda: engine.layout(panel)),
        ("with_values", lambda: tree.with_values(values)),
    ]
    print(f"server-monitor, {iterations} iterations, Python {sys.version.split()[0]}")
    for name, fn in rows:
        median, p90 = _measure(fn, iterations)
        print(f"{name:<24} median {median:7.3f} ms   p90 {p90:7.3f} ms")


if __name__ == "__main__":
    main()
