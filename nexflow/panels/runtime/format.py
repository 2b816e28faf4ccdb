"""Display helpers shared by the chat snapshot and the HTML preview."""

from __future__ import annotations

from collections.abc import Sequence

from pydantic import JsonValue

from nexflow.panels.values import js_string

LEVELS = frozenset(
    {"trace", "debug", "info", "notice", "warn", "warning", "error", "critical", "fatal"}
)
_TONES = {
    "ok": ("ok", "up", "healthy", "running", "online", "active", "success", "passed", "done",
           "ready"),
    "warn": ("warn", "warning", "degraded", "pending", "rebooting", "restarting", "starting",
             "busy", "slow", "queued", "maintenance"),
    "error": ("error", "down", "failed", "failure", "offline", "critical", "crashed", "dead",
              "canceled", "cancelled"),
}  # fmt: skip
TONE_MARK = {"ok": "🟢", "warn": "🟡", "error": "🔴", "info": "🔵"}
TREND_MARK = {"up": "↑", "down": "↓", "flat": "→"}
_SPARK = "▁▂▃▄▅▆▇█"


def tone_of(value: object, tone: object) -> str:
    if isinstance(tone, str) and tone in TONE_MARK:
        return tone
    word = js_string(value).strip().lower()
    for name, words in _TONES.items():
        if word in words:
            return name
    return "info"


def line_level(line: JsonValue) -> str | None:
    if isinstance(line, dict):
        level = line.get("level")
        return str(level).lower() if level is not None else None
    return None


def line_text(line: JsonValue) -> str:
    if isinstance(line, dict):
        level = line.get("level")
        message = line.get("message", line.get("msg", line.get("text", "")))
        stamp = line.get("time", line.get("ts"))
        head = " ".join(js_string(p) for p in (stamp, f"[{level}]" if level else None) if p)
        return f"{head} {js_string(message)}".strip()
    return js_string(line)


def filter_lines(lines: object, flt: object) -> list[JsonValue]:
    """A LogStream's lines after its ``filter``: a level name keeps lines of that level
    (object lines) or containing it; any other text keeps lines containing it."""
    items: list[JsonValue] = list(lines) if isinstance(lines, list) else []
    if not isinstance(flt, str) or not flt.strip():
        return items
    needle = flt.strip().lower()
    out = []
    for line in items:
        level = line_level(line)
        if needle in LEVELS and level is not None:
            if level == needle or (needle.startswith("warn") and level.startswith("warn")):
                out.append(line)
        elif needle in line_text(line).lower():
            out.append(line)
    return out


def sparkline(values: Sequence[float]) -> str:
    if not values:
        return ""
    low, high = min(values), max(values)
    span = (high - low) or 1.0
    return "".join(_SPARK[int((v - low) / span * (len(_SPARK) - 1))] for v in values)


def series(data: object, y: object) -> list[float]:
    """Numbers of a Chart's first series (plain numbers, or the first ``y`` key)."""
    key = y.split(",")[0].strip() if isinstance(y, str) and y else None
    out: list[float] = []
    for item in data if isinstance(data, list) else []:
        value = item.get(key) if isinstance(item, dict) and key else item
        if isinstance(value, int | float) and not isinstance(value, bool):
            out.append(float(value))
    return out


def table(data: object, columns: object) -> tuple[list[str], list[list[str]]]:
    rows = [r for r in (data if isinstance(data, list) else []) if isinstance(r, dict)]
    if isinstance(columns, str) and columns.strip():
        cols = [c.strip() for c in columns.split(",") if c.strip()]
    else:
        cols = [str(k) for k in rows[0]] if rows else []
    return cols, [[js_string(r.get(c)) for c in cols] for r in rows]


def item_label(item: JsonValue, label_key: object) -> str:
    if isinstance(item, dict):
        key = label_key if isinstance(label_key, str) else "text"
        return js_string(item.get(key, ""))
    return js_string(item)
