"""Fake executables for the ops skill tests: ``systemctl``/``journalctl`` printing the
real output formats (``show`` key=value blocks, plain ``list-units`` columns, journal JSON
lines) and ``aws``/``gcloud``/``az`` echoing their argv as JSON. Each one records its argv
(one JSON list per line) so tests can check what ran; put the folder inside the skill's
workspace so the sandbox can see it."""

from __future__ import annotations

import json
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

# -- fake executables -----------------------------------------------------------------


def _write_program(path: Path, body: str, record: Path) -> None:
    head = f"#!{sys.executable}\nimport json, sys\nRECORD = {str(record)!r}\n"
    head += "with open(RECORD, 'a') as fh:\n    fh.write(json.dumps(sys.argv) + '\\n')\n"
    path.write_text(head + body)
    path.chmod(0o755)


def recorded(record: Path) -> list[list[str]]:
    """The argv of every fake run, in order."""
    if not record.exists():
        return []
    return [json.loads(line) for line in record.read_text().splitlines() if line.strip()]


SYSTEMCTL = r"""
import os
STATE = os.path.join(os.path.dirname(RECORD), "units.json")
units = json.load(open(STATE))
args = sys.argv[1:]
cmd = next(a for a in args if not a.startswith("-"))
names = args[args.index("--") + 1:] if "--" in args else []

def full(name):
    return name if "." in name else name + ".service"

if cmd == "show":
    props = next(a for a in args if a.startswith("--property=")).split("=", 1)[1].split(",")
    blocks = []
    for name in names:
        missing = {"Id": full(name), "LoadState": "not-found", "ActiveState": "inactive"}
        unit = units.get(full(name), {**missing, "SubState": "dead"})
        blocks.append("\n".join(f"{p}={unit.get(p, '')}" for p in props))
    print("\n\n".join(blocks))
elif cmd == "list-units":
    for name, unit in sorted(units.items()):
        if "--state=failed" in args and unit["ActiveState"] != "failed":
            continue
        cols = [unit[k] for k in ("LoadState", "ActiveState", "SubState", "Description")]
        print(name, *cols)
elif cmd in ("restart", "stop", "start"):
    name = full(names[0])
    if name not in units:
        print(f"Failed to {cmd} {name}: Unit {name} not found.", file=sys.stderr)
        sys.exit(5)
    unit = units[name]
    active = cmd != "stop"
    new = ("active", "running") if active else ("inactive", "dead")
    unit["ActiveState"], unit["SubState"] = new
    if cmd == "restart":
        unit["NRestarts"] = int(unit.get("NRestarts", 0)) + 1
    json.dump(units, open(STATE, "w"))
else:
    print(f"Unknown command verb {cmd}.", file=sys.stderr)
    sys.exit(1)
"""

JOURNALCTL = r"""
import os
entries = [json.loads(l) for l in open(os.path.join(os.path.dirname(RECORD), "journal.jsonl"))]
args = sys.argv[1:]
opts = dict(a[2:].split("=", 1) for a in args if a.startswith("--") and "=" in a)
if opts.get("output") != "json":
    print("fake journalctl only speaks --output=json", file=sys.stderr)
    sys.exit(1)
if "unit" in opts:
    unit = opts["unit"] if "." in opts["unit"] else opts["unit"] + ".service"
    entries = [e for e in entries if e.get("_SYSTEMD_UNIT") == unit]
if "priority" in opts:
    names = ["emerg", "alert", "crit", "err", "warning", "notice", "info", "debug"]
    wanted = opts["priority"]
    level = names.index(wanted) if wanted in names else int(wanted)
    entries = [e for e in entries if int(e["PRIORITY"]) <= level]
for e in entries[-int(opts.get("lines", "10")):]:
    print(json.dumps(e))
"""

UNITS = {
    "nginx.service": {
        "Id": "nginx.service",
        "Description": "A high performance web server",
        "LoadState": "loaded",
        "ActiveState": "active",
        "SubState": "running",
        "UnitFileState": "enabled",
        "MainPID": "812",
        "NRestarts": "0",
        "Result": "success",
        "ActiveEnterTimestamp": "Sat 2026-12-05 08:00:00 UTC",
        "MemoryCurrent": "52428800",
    },
    "backup.service": {
        "Id": "backup.service",
        "Description": "Nightly backup",
        "LoadState": "loaded",
        "ActiveState": "failed",
        "SubState": "failed",
        "UnitFileState": "static",
        "MainPID": "0",
        "NRestarts": "0",
        "Result": "exit-code",
        "ActiveEnterTimestamp": "",
        "MemoryCurrent": "[not set]",
    },
}


def journal_entries() -> list[dict[str, Any]]:
    base = 1_764_928_800_000_000  # 2025-12-05T10:00:00Z in microseconds
    rows: list[dict[str, Any]] = []
    for i in range(30):
        rows.append(
            {
                "__REALTIME_TIMESTAMP": str(base + i * 1_000_000),
                "_SYSTEMD_UNIT": "nginx.service",
                "SYSLOG_IDENTIFIER": "nginx",
                "_PID": "812",
                "PRIORITY": "6",
                "MESSAGE": f"request {i} served",
            }
        )
    rows.append(
        {
            "__REALTIME_TIMESTAMP": str(base + 40_000_000),
            "_SYSTEMD_UNIT": "nginx.service",
            "SYSLOG_IDENTIFIER": "nginx",
            "_PID": "812",
            "PRIORITY": "3",
            "MESSAGE": [99, 97, 102, 195, 169, 32, 101, 114, 114, 111, 114],  # bytes: "café error"
        }
    )
    return rows


@dataclass(frozen=True)
class FakeBin:
    """A folder of fake executables; ``calls()`` lists their recorded argv."""

    folder: Path
    record: Path

    def calls(self) -> list[list[str]]:
        return recorded(self.record)

    def path_env(self, rest: str = "") -> str:
        return f"{self.folder}:{rest}" if rest else str(self.folder)


def fake_systemd(folder: Path, *, with_journalctl: bool = True) -> FakeBin:
    """``systemctl`` and ``journalctl`` in ``folder`` with two units (nginx, backup)."""
    folder.mkdir(parents=True, exist_ok=True)
    record = folder / "calls.jsonl"
    (folder / "units.json").write_text(json.dumps(UNITS))
    (folder / "journal.jsonl").write_text("".join(json.dumps(e) + "\n" for e in journal_entries()))
    _write_program(folder / "systemctl", SYSTEMCTL, record)
    if with_journalctl:
        _write_program(folder / "journalctl", JOURNALCTL, record)
    return FakeBin(folder, record)


def units(fake: FakeBin) -> dict[str, dict[str, str]]:
    return json.loads((fake.folder / "units.json").read_text())  # type: ignore[no-any-return]


CLOUD = r"""
import os
cli = os.path.basename(sys.argv[0])
args = sys.argv[1:]
if "fail-me" in args:
    print("An error occurred (AccessDenied): not allowed", file=sys.stderr)
    sys.exit(254)
if "sleep-me" in args:
    import time
    time.sleep(30)
if "huge-output" in args:
    print(json.dumps([{"i": i, "pad": "x" * 100} for i in range(20000)]))
    sys.exit(0)
if "not-json" in args:
    print("plain text answer")
    sys.exit(0)
print(json.dumps({"cli": cli, "args": args, "Reservations": [{"InstanceId": "i-0abc123"}]}))
"""


def fake_cloud_clis(folder: Path, names: tuple[str, ...] = ("aws", "gcloud", "az")) -> FakeBin:
    """Fake ``aws``/``gcloud``/``az`` that echo their argv as JSON and record it."""
    folder.mkdir(parents=True, exist_ok=True)
    record = folder / "calls.jsonl"
    for name in names:
        _write_program(folder / name, CLOUD, record)
    return FakeBin(folder, record)
