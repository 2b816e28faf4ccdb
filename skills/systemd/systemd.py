"""systemd: unit status, journal lines, and restart/stop/start, via systemctl and journalctl.

Every command is an argv list (no shell); values go in ``--option=value`` form and unit
names after ``--``, so nothing the model writes can become an option.
"""

from __future__ import annotations

import datetime as dt
import json
import re
import sys
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "_lib"))
import prockit
import skillkit

ACTIONS = ("status", "list", "journal", "restart", "stop", "start")
WRITES = ("restart", "stop", "start")
UNIT = re.compile(r"[A-Za-z0-9:_.@\\-]{1,255}")
UNIT_HINT = "letters, digits and ':_.@-', e.g. nginx.service"
PATTERN = re.compile(r"[A-Za-z0-9:_.@*?\[\]\\-]{1,255}")
SINCE = re.compile(r"[A-Za-z0-9 :+.\-]{1,40}")
TYPES = ("service", "timer", "socket", "mount", "target", "path", "slice", "scope")
STATES = ("active", "inactive", "failed", "running", "exited", "dead", "activating")
PRIORITIES = ("emerg", "alert", "crit", "err", "warning", "notice", "info", "debug")
PROPERTIES = (
    "Id",
    "Description",
    "LoadState",
    "ActiveState",
    "SubState",
    "UnitFileState",
    "MainPID",
    "NRestarts",
    "Result",
    "ActiveEnterTimestamp",
    "MemoryCurrent",
)
MAX_OUTPUT = 1024 * 1024
MAX_MESSAGE = 2000
MAX_JOURNAL_JSON = 400 * 1024  # the skill's output cap is 512 KB
TIMEOUT = 15.0
CHANGE_TIMEOUT = 40.0


def unit_of(value: object, field: str = "unit") -> str:
    return prockit.check_name(value, field, UNIT, UNIT_HINT)


def units_of(args: dict[str, Any]) -> list[str]:
    field = "units" if "units" in args else "unit"
    raw = args.get(field)
    items = [raw] if isinstance(raw, str) else raw
    if not isinstance(items, list) or not 1 <= len(items) <= 20:
        raise skillkit.Refused("'units' must be a list of 1 to 20 unit names (or 'unit': a name)")
    return [unit_of(u, field) for u in items]


def systemctl(*argv: str, timeout: float = TIMEOUT) -> prockit.Completed:
    done = prockit.run(["systemctl", *argv], timeout=timeout, max_bytes=MAX_OUTPUT)
    if done.truncated:
        raise skillkit.Failed(f"systemctl printed more than {MAX_OUTPUT} bytes")
    return done


def show(units: list[str]) -> list[dict[str, Any]]:
    done = systemctl("show", "--no-pager", f"--property={','.join(PROPERTIES)}", "--", *units)
    if done.code != 0:
        raise skillkit.Failed(f"systemctl show: {done.stderr_line()}")
    blocks = done.stdout.decode(errors="replace").strip().split("\n\n")
    out = []
    for name, block in zip(units, blocks, strict=False):
        props = dict(line.split("=", 1) for line in block.splitlines() if "=" in line)
        out.append(unit_summary(name, props))
    return out


def unit_summary(name: str, props: dict[str, str]) -> dict[str, Any]:
    def number(key: str) -> int | None:
        value = props.get(key, "")
        return int(value) if value.isdigit() else None

    return {
        "unit": props.get("Id") or name,
        "description": props.get("Description") or None,
        "load": props.get("LoadState"),
        "active": props.get("ActiveState"),
        "sub": props.get("SubState"),
        "enabled": props.get("UnitFileState") or None,
        "main_pid": number("MainPID") or None,
        "restarts": number("NRestarts"),
        "result": props.get("Result") or None,
        "since": props.get("ActiveEnterTimestamp") or None,
        "memory_bytes": number("MemoryCurrent"),
    }


def status(args: dict[str, Any]) -> dict[str, Any]:
    return {"units": show(units_of(args))}


def list_units(args: dict[str, Any]) -> dict[str, Any]:
    kind = args.get("type", "service")
    if kind not in TYPES:
        raise skillkit.Refused(f"'type' must be one of {', '.join(TYPES)}")
    argv = ["list-units", "--no-pager", "--no-legend", "--plain", f"--type={kind}"]
    if args.get("state") is not None:
        if args.get("state") not in STATES:
            raise skillkit.Refused(f"'state' must be one of {', '.join(STATES)}")
        argv.append(f"--state={args['state']}")
    if args.get("all"):
        argv.append("--all")
    if args.get("pattern") is not None:
        pattern = prockit.check_name(args.get("pattern"), "pattern", PATTERN, "a unit glob")
        argv += ["--", pattern]
    done = systemctl(*argv)
    if done.code != 0:
        raise skillkit.Failed(f"systemctl list-units: {done.stderr_line()}")
    rows = []
    for line in done.stdout.decode(errors="replace").splitlines():
        parts = line.split(None, 4)
        if len(parts) >= 4:
            unit, load, active, sub = parts[:4]
            desc = parts[4] if len(parts) > 4 else ""
            rows.append(
                {"unit": unit, "load": load, "active": active, "sub": sub, "description": desc}
            )
    return {"units": rows[:500], "count": len(rows)}


def message_text(value: object) -> str:
    if isinstance(value, list):  # journald sends non-UTF-8 or binary messages as bytes
        value = bytes(v for v in value if isinstance(v, int) and 0 <= v < 256).decode(
            errors="replace"
        )
    return prockit.clip(str(value if value is not None else ""), MAX_MESSAGE)


def journal(args: dict[str, Any]) -> dict[str, Any]:
    unit = unit_of(args.get("unit"))
    lines = prockit.int_in(args, "lines", 50, 1, 1000)
    argv = ["journalctl", "--no-pager", "--output=json", f"--lines={lines}", f"--unit={unit}"]
    for field in ("since", "until"):
        value = args.get(field)
        if value is not None:
            if not isinstance(value, str) or not SINCE.fullmatch(value):
                raise skillkit.Refused(
                    f"'{field}' must be a time like '2026-12-05 10:00', '-1h' or 'yesterday'"
                )
            argv.append(f"--{field}={value}")
    if args.get("priority") is not None:
        prio = str(args.get("priority")).lower()
        if prio not in PRIORITIES and prio not in {str(i) for i in range(8)}:
            raise skillkit.Refused(f"'priority' must be 0-7 or one of {', '.join(PRIORITIES)}")
        argv.append(f"--priority={prio}")
    done = prockit.run(argv, timeout=TIMEOUT, max_bytes=MAX_OUTPUT * 4)
    if done.code != 0:
        raise skillkit.Failed(f"journalctl: {done.stderr_line()}")
    entries = []
    for raw in done.stdout.decode(errors="replace").splitlines():
        try:
            entry = json.loads(raw)
        except ValueError:
            continue  # the last line when the output was cut
        entries.append(journal_row(entry))
    kept, dropped = prockit.keep_last(entries, MAX_JOURNAL_JSON)
    return {"unit": unit, "entries": kept, "truncated": done.truncated or dropped}


def journal_row(entry: dict[str, Any]) -> dict[str, Any]:
    stamp = str(entry.get("__REALTIME_TIMESTAMP", ""))
    when = None
    if stamp.isdigit():
        when = dt.datetime.fromtimestamp(int(stamp) / 1e6, dt.UTC).isoformat(timespec="seconds")
    prio = str(entry.get("PRIORITY", ""))
    return {
        "time": when,
        "priority": PRIORITIES[int(prio)] if prio.isdigit() and int(prio) < 8 else None,
        "unit": entry.get("_SYSTEMD_UNIT"),
        "identifier": entry.get("SYSLOG_IDENTIFIER"),
        "pid": int(entry["_PID"]) if str(entry.get("_PID", "")).isdigit() else None,
        "message": message_text(entry.get("MESSAGE")),
    }


def change(args: dict[str, Any], action: str) -> dict[str, Any]:
    unit = unit_of(args.get("unit"))
    done = systemctl(action, "--no-pager", "--no-ask-password", "--", unit, timeout=CHANGE_TIMEOUT)
    if done.code != 0:
        raise skillkit.Failed(f"systemctl {action}: {done.stderr_line()}")
    return {"unit": unit, "action": action, "result": "done", "status": show([unit])[0]}


READS = {"status": status, "list": list_units, "journal": journal}


def run(args: dict[str, Any]) -> Any:
    action = prockit.choice(args, "action", ACTIONS)
    if action in WRITES:
        return change(args, action)
    return READS[action](args)


if __name__ == "__main__":
    skillkit.main("systemd", run)
