"""Install size and time: a fresh clone's ``make run`` set-up, next to nanobot's install.

Clones the repository (HEAD of the working copy) into a temporary folder, runs
``scripts/setup.sh run`` there (what ``make run`` does before it starts the gateway: a new
``.venv``, ``nexflow[all]`` with the local embedder, the bytecode, the Wasm guest) and
prints its wall time and the size of the virtualenv, the biggest packages in it, and the
same for ``pip install nanobot-ai`` in a fresh venv on the same machine::

    .venv/bin/python bench/install_bench.py [--no-nanobot] [--keep] [--json FILE]

pip's cache is whatever this machine has (warm after the first run): the times are for
a machine that has downloaded the wheels before; the sizes do not depend on it.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
NANOBOT = "nanobot-ai"
TARGET_MB = 400


def du_mb(path: Path) -> float:
    total = 0
    for root, _dirs, files in os.walk(path):
        for name in files:
            file = Path(root) / name
            if not file.is_symlink():
                total += file.stat().st_size
    return round(total / 1e6, 1)


def site_packages(venv: Path) -> Path:
    return next((venv / "lib").glob("python3*/site-packages"))


def biggest(venv: Path, count: int = 12) -> list[tuple[str, float]]:
    sizes = [(p.name, du_mb(p)) for p in site_packages(venv).iterdir() if p.is_dir()]
    return sorted(sizes, key=lambda item: -item[1])[:count]


def timed(argv: list[str], cwd: Path, env: dict[str, str] | None = None) -> float:
    started = time.perf_counter()
    done = subprocess.run(argv, cwd=cwd, env=env, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        sys.exit(
            f"install_bench: {' '.join(argv)} failed:\n{done.stdout[-2000:]}{done.stderr[-2000:]}"
        )
    return round(time.perf_counter() - started, 1)


def nexflow_install(work: Path) -> dict[str, Any]:
    clone = work / "nexflow"
    subprocess.run(["git", "clone", "-q", str(REPO), str(clone)], check=True)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("NEXFLOW_", "VIRTUAL_ENV"))}
    seconds = timed(["scripts/setup.sh", "run"], clone, env)
    venv = clone / ".venv"
    return {"seconds": seconds, "venv_mb": du_mb(venv), "biggest": biggest(venv)}


def nanobot_install(work: Path) -> dict[str, Any]:
    venv = work / "nanobot-venv"
    started = time.perf_counter()
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    pip = [str(venv / "bin" / "python"), "-m", "pip", "install", "-q"]
    timed([*pip, "--upgrade", "pip"], work)
    timed([*pip, NANOBOT], work)
    version = subprocess.run(
        [str(venv / "bin" / "python"), "-m", "pip", "show", NANOBOT],
        capture_output=True,
        text=True,
        check=False,
    ).stdout
    return {
        "seconds": round(time.perf_counter() - started, 1),
        "venv_mb": du_mb(venv),
        "version": next(
            (ln.split()[1] for ln in version.splitlines() if ln.startswith("Version")), "?"
        ),
        "biggest": biggest(venv),
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--no-nanobot", action="store_true", help="skip the comparison row")
    parser.add_argument("--keep", action="store_true", help="keep the temporary folder")
    parser.add_argument("--json", type=Path, metavar="FILE", help="also write the figures as JSON")
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="nexflow-install-"))
    result: dict[str, Any] = {"loadavg": [round(x, 2) for x in os.getloadavg()]}
    try:
        print("... make run's set-up in a fresh clone", file=sys.stderr, flush=True)
        result["nexflow"] = nexflow_install(work)
        if not args.no_nanobot:
            print(f"... pip install {NANOBOT}", file=sys.stderr, flush=True)
            result["nanobot"] = nanobot_install(work)
    finally:
        if args.keep:
            print(f"kept {work}", file=sys.stderr)
        else:
            shutil.rmtree(work, ignore_errors=True)
    mine = result["nexflow"]
    verdict = "PASS" if mine["venv_mb"] <= TARGET_MB else "MISS"
    print(f"install bench — load {result['loadavg']}")
    print(f"{'install':<34} {'venv MB':>8} {'time s':>7}")
    print(
        f"{'nexflow: make run set-up':<34} {mine['venv_mb']:>8} {mine['seconds']:>7}  "
        f"(target <= {TARGET_MB} MB: {verdict})"
    )
    if "nanobot" in result:
        other = result["nanobot"]
        label = f"nanobot-ai {other['version']}: pip install"
        print(f"{label:<34} {other['venv_mb']:>8} {other['seconds']:>7}")
    for name in ("nexflow", "nanobot"):
        if name in result:
            top = ", ".join(f"{pkg} {mb:g}" for pkg, mb in result[name]["biggest"])
            print(f"  {name} biggest (MB): {top}")
    if args.json:
        args.json.write_text(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
