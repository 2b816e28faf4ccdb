"""Skills benchmark: runner spawn → first byte of a trivial bash skill, and the prompt index.

Usage: python bench/skills_bench.py [--runs 50]
Target (issue 3): spawn-to-first-byte median ≤ 20 ms; prompt for "hi" ≤ 1,500 tokens.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from nexflow.skills import (  # noqa: E402
    IsolationLevel,
    SkillRegistry,
    SkillRunner,
    load_skill,
    render_index,
)
from nexflow.skills.eligibility import HostContext, evaluate  # noqa: E402
from nexflow.skills.isolation import detect  # noqa: E402

TRIVIAL = "---\nname: trivial\ndescription: Prints one byte.\nlocation: ./run.sh\n---\n"


async def spawn_times(level: IsolationLevel, runs: int, tmp: Path) -> list[float]:
    folder = tmp / "skills" / "trivial"
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "SKILL.md").write_text(TRIVIAL)
    (folder / "run.sh").write_text("printf x\n")
    skill = evaluate(load_skill(folder / "SKILL.md"), HostContext())
    workspace = tmp / "ws"
    workspace.mkdir(exist_ok=True)
    runner = SkillRunner(isolation=level)
    times: list[float] = []
    for _ in range(runs + 3):
        result = await runner.run(skill, {}, workspace=workspace)
        assert result.ok and result.first_byte_ms is not None, result.error
        times.append(result.first_byte_ms)
    return times[3:]  # warm-up


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


async def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=50)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="nexflow-bench-") as scratch:
        tmp = Path(scratch)
        levels = [IsolationLevel.NONE]
        for level in (IsolationLevel.NAMESPACES, IsolationLevel.BWRAP):
            if detect(tmp, prefer=level)[0] is level:
                levels.append(level)
        print("runner spawn -> first byte of a trivial bash skill")
        for level in levels:
            times = await spawn_times(level, args.runs, tmp)
            print(
                f"  isolation={level.value:<10} median {statistics.median(times):6.1f} ms"
                f"   p90 {pct(times, 0.9):6.1f} ms   (n={len(times)})"
            )
    registry = SkillRegistry([ROOT / "skills"])
    registry.reload()
    index = render_index(registry.list())
    print(f"prompt index, all {len(registry)} bundled skills:")
    print(f"  {len(index)} chars, ~{len(index) // 4} tokens (chars/4)")


if __name__ == "__main__":
    asyncio.run(main())
