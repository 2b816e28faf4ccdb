"""SIGKILL the engine's process mid-run, restart it with the same executor id, and check
every run finishes and every side effect's key is used once (same key on replay)."""

import json
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

WORKER = Path(__file__).with_name("flows_crash_worker.py")
RUNS = 3
KILLS = 5
TOOL_NODES = ("fetch", "left", "right", "ship")


def _spawn(home: Path) -> subprocess.Popen[str]:
    env = {**os.environ, "LITELLM_LOCAL_MODEL_COST_MAP": "True"}
    with (home / "stderr.log").open("a") as err:
        return subprocess.Popen(
            [sys.executable, str(WORKER), str(home), str(RUNS)],
            stdout=subprocess.PIPE,
            stderr=err,
            text=True,
            env=env,
        )


@pytest.mark.slow
def test_sigkill_mid_run_resumes_without_double_effects(tmp_path: Path) -> None:
    rng = random.Random(int(os.environ.get("FLOWS_CRASH_SEED", "13")))
    home = tmp_path / "home"
    home.mkdir()
    deadline = time.monotonic() + 55
    for _ in range(KILLS):
        proc = _spawn(home)
        time.sleep(rng.uniform(1.0, 2.5))
        proc.send_signal(signal.SIGKILL)
        proc.communicate(timeout=10)
    proc = _spawn(home)
    out, _ = proc.communicate(timeout=max(5.0, deadline - time.monotonic()))
    assert proc.returncode == 0, (home / "stderr.log").read_text()[-3000:]
    done = next(line for line in out.splitlines() if line.startswith("DONE "))
    statuses = json.loads(done.removeprefix("DONE "))
    assert statuses == {f"run{i}": "completed" for i in range(RUNS)}

    effects = [json.loads(x)["key"] for x in (home / "effects.jsonl").read_text().splitlines()]
    assert len(effects) == len(set(effects))
    expected = {f"run{i}:{n}:1" for i in range(RUNS) for n in TOOL_NODES}
    expected |= {f"ask:run{i}:ask" for i in range(RUNS)}
    # one key per node: a replay reuses the key instead of inventing attempt 2
    assert set(effects) == expected
