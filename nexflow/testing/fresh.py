"""Run Python code in a fresh interpreter, the way start-up tests check what is imported.

``run_fresh(code, home)`` runs ``python -c code`` from the repository root with the
caller's ``NEXFLOW_*`` variables removed and a gateway configured by environment alone
(a fake ``openai/fake`` model at a closed port, no Ollama probe, ``NEXFLOW_HOME`` =
``home``), and returns its stdout; a non-zero exit fails with its stderr.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Mapping
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]

GATEWAY_ENV = {
    "NEXFLOW_LLM_MODEL": "openai/fake",
    "NEXFLOW_LLM_API_BASE": "http://127.0.0.1:9/v1",
    "NEXFLOW_LLM_API_KEY": "x",
    "NEXFLOW_LLM__OLLAMA__PROBE": "false",
}


def run_fresh(code: str, home: Path, env: Mapping[str, str] | None = None) -> str:
    base = {k: v for k, v in os.environ.items() if not k.startswith("NEXFLOW_")}
    out = subprocess.run(
        [sys.executable, "-c", code],
        cwd=REPO,
        env={**base, **GATEWAY_ENV, "NEXFLOW_HOME": str(home), **(env or {})},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    if out.returncode != 0:
        raise AssertionError(f"the fresh interpreter failed:\n{out.stderr}")
    return out.stdout
