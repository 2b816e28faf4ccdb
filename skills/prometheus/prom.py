"""prometheus: PromQL instant and range queries, scrape targets and alerts, compactly.

PROMETHEUS_URL comes from the admin (config ``skills.secrets``), with an optional
PROMETHEUS_TOKEN (sent as a Bearer token); ``user:password@`` in the URL is Basic auth.
"""

from __future__ import annotations

import math
import os
import re
import sys
import time
from collections import Counter
from datetime import datetime
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "_lib"))
import httpkit
import skillkit

MAX_QUERY = 4000
SERIES_DEFAULT, SERIES_MAX = 20, 100
POINTS_DEFAULT, POINTS_MAX = 30, 200
MAX_POINTS = 3000  # points in one answer, over all series
RANGE_RESOLUTION = 250  # samples per series asked of Prometheus when no step is given
MAX_SAMPLES = 11_000  # Prometheus refuses more points per series than this
DURATION = re.compile(r"(\d+(?:\.\d+)?)(ms|s|m|h|d|w|y)")
UNITS = {"ms": 0.001, "s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800, "y": 31536000}


def client() -> httpkit.Client:
    headers = {}
    token = os.environ.get("PROMETHEUS_TOKEN", "").strip()
    if token:
        headers["Authorization"] = f"Bearer {token}"
    return httpkit.Client(httpkit.base_url("PROMETHEUS_URL"), service="Prometheus", headers=headers)


# -- input -----------------------------------------------------------------------------


def duration(text: str, key: str) -> float:
    """``1h30m`` → 5400.0 (Prometheus duration syntax); a bare number is seconds."""
    text = text.strip()
    try:
        return float(text)
    except ValueError:
        pass
    pos, total = 0, 0.0
    for m in DURATION.finditer(text):
        if m.start() != pos:
            break
        total += float(m.group(1)) * UNITS[m.group(2)]
        pos = m.end()
    if pos != len(text) or total <= 0:
        raise skillkit.Refused(f"'{key}' must be a duration like 30s, 5m, 1h30m, 7d")
    return total


def moment(value: object, key: str, now: float) -> float:
    """A time as Unix seconds: a number, RFC 3339, ``now``, or ``now-1h`` / ``-1h``."""
    if isinstance(value, bool) or value is None:
        raise skillkit.Refused(f"'{key}' must be a time")
    if isinstance(value, int | float):
        return float(value)
    if not isinstance(value, str):
        raise skillkit.Refused(f"'{key}' must be a time")
    text = value.strip()
    if text == "now":
        return now
    for prefix in ("now-", "-"):
        if text.startswith(prefix):
            return now - duration(text[len(prefix) :], key)
    try:
        return float(text)
    except ValueError:
        pass
    try:
        return datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()
    except ValueError:
        raise skillkit.Refused(
            f"'{key}' must be Unix seconds, RFC 3339 (2026-12-01T12:00:00Z), 'now' or '-1h'"
        ) from None


def query_of(args: dict[str, Any]) -> str:
    query = args.get("query")
    if not isinstance(query, str) or not query.strip():
        raise skillkit.Refused("'query' must be a PromQL expression, e.g. 'up{job=\"api\"}'")
    if len(query) > MAX_QUERY:
        raise skillkit.Refused(f"'query' is {len(query)} characters; the limit is {MAX_QUERY}")
    return query


# -- rendering ---------------------------------------------------------------------------


def series_name(metric: dict[str, Any]) -> str:
    """``name{label="value",...}`` as PromQL writes a series."""
    name = str(metric.get("__name__", ""))
    labels = ",".join(
        f'{k}="{httpkit.clip(v, 200)}"' for k, v in sorted(metric.items()) if k != "__name__"
    )
    return httpkit.clip(f"{name}{{{labels}}}" if labels or not name else name, 1000)


def number(value: str) -> float:
    try:
        return float(value)
    except (TypeError, ValueError):
        return math.nan


def pick(values: list[Any], count: int) -> list[Any]:
    """At most ``count`` samples spread evenly, keeping the first and the last."""
    if len(values) <= count:
        return values
    if count == 1:
        return values[-1:]
    step = (len(values) - 1) / (count - 1)
    return [values[round(i * step)] for i in range(count)]


def stats(values: list[Any]) -> dict[str, Any]:
    numbers = [n for n in (number(v[1]) for v in values) if not math.isnan(n)]
    if not numbers:
        return {"min": None, "max": None, "avg": None, "last": values[-1][1] if values else None}
    return {
        "min": f"{min(numbers):g}",
        "max": f"{max(numbers):g}",
        "avg": f"{sum(numbers) / len(numbers):g}",
        "last": values[-1][1],
    }


def data_of(answer: Any) -> Any:
    if not isinstance(answer, dict) or answer.get("status") != "success":
        said = answer.get("error") if isinstance(answer, dict) else None
        raise skillkit.Failed(f"Prometheus did not answer with success: {said or answer!r}")
    return answer.get("data")


def with_warnings(answer: Any, out: dict[str, Any]) -> dict[str, Any]:
    warnings = answer.get("warnings") if isinstance(answer, dict) else None
    if warnings:
        out["warnings"] = [httpkit.clip(w, 300) for w in warnings[:5]]
    return out


# -- actions -----------------------------------------------------------------------------


def instant(api: httpkit.Client, args: dict[str, Any], now: float) -> dict[str, Any]:
    query = query_of(args)
    params: dict[str, Any] = {"query": query}
    if args.get("time") is not None:
        params["time"] = f"{moment(args['time'], 'time', now):.3f}"
    limit = skillkit.positive_int(args, "limit", SERIES_DEFAULT, most=SERIES_MAX)
    answer = api.get("/api/v1/query", params)
    data = data_of(answer)
    kind = data.get("resultType")
    result = data.get("result")
    out: dict[str, Any] = {"query": query, "result_type": kind}
    if kind in ("scalar", "string"):
        out.update({"value": result[1], "at": result[0], "count": 1, "series": []})
        return with_warnings(answer, out)
    series = [
        {"series": series_name(s.get("metric") or {}), "value": s["value"][1], "at": s["value"][0]}
        for s in result[:limit]
    ]
    out.update({"count": len(result), "series": series, "truncated": len(result) > limit})
    return with_warnings(answer, out)


def ranged(api: httpkit.Client, args: dict[str, Any], now: float) -> dict[str, Any]:
    query = query_of(args)
    end = moment(args.get("end", "now"), "end", now)
    start = moment(args.get("start", "-1h"), "start", now if "end" not in args else end)
    if start >= end:
        raise skillkit.Refused("'start' must be before 'end'")
    if args.get("step") is not None:
        step = duration(str(args["step"]), "step")
    else:
        step = max(math.ceil((end - start) / RANGE_RESOLUTION), 1)
    if (end - start) / step > MAX_SAMPLES:
        raise skillkit.Refused(
            f"{(end - start) / step:.0f} samples per series; make 'step' larger "
            f"(at least {math.ceil((end - start) / MAX_SAMPLES)}s) or the range shorter"
        )
    limit = skillkit.positive_int(args, "limit", SERIES_DEFAULT, most=SERIES_MAX)
    points = skillkit.positive_int(args, "points", POINTS_DEFAULT, most=POINTS_MAX)
    params = {"query": query, "start": f"{start:.3f}", "end": f"{end:.3f}", "step": f"{step:g}"}
    answer = api.get("/api/v1/query_range", params)
    data = data_of(answer)
    result = data.get("result") or []
    # Keep the answer small whatever the caller asked: at most MAX_POINTS points in all.
    points = max(min(points, MAX_POINTS // max(min(len(result), limit), 1)), 2)
    series = []
    for s in result[:limit]:
        values = s.get("values") or []
        series.append(
            {
                "series": series_name(s.get("metric") or {}),
                "samples": len(values),
                **stats(values),
                "points": pick(values, points),
            }
        )
    out = {
        "query": query,
        "result_type": data.get("resultType"),
        "start": start,
        "end": end,
        "step": step,
        "count": len(result),
        "series": series,
        "truncated": len(result) > limit,
    }
    return with_warnings(answer, out)


def targets(api: httpkit.Client, args: dict[str, Any], now: float) -> dict[str, Any]:
    health = args.get("health")
    if health is not None and health not in ("up", "down", "unknown"):
        raise skillkit.Refused("'health' must be up, down or unknown")
    limit = skillkit.positive_int(args, "limit", 50, most=SERIES_MAX)
    data = data_of(api.get("/api/v1/targets", {"state": "active"}))
    active = [t for t in data.get("activeTargets") or [] if isinstance(t, dict)]
    counts = Counter(str(t.get("health")) for t in active)
    chosen = [t for t in active if health is None or t.get("health") == health]
    items = [
        {
            "job": (t.get("labels") or {}).get("job") or t.get("scrapePool"),
            "instance": (t.get("labels") or {}).get("instance"),
            "health": t.get("health"),
            "last_error": httpkit.clip(t.get("lastError"), 300) or None,
            "last_scrape": t.get("lastScrape"),
            "scrape_url": t.get("scrapeUrl"),
        }
        for t in chosen[:limit]
    ]
    return {"counts": dict(sorted(counts.items())), "items": items, "count": len(chosen)}


def alerts(api: httpkit.Client, args: dict[str, Any], now: float) -> dict[str, Any]:
    state = args.get("state")
    if state is not None and state not in ("firing", "pending"):
        raise skillkit.Refused("'state' must be firing or pending")
    limit = skillkit.positive_int(args, "limit", 50, most=SERIES_MAX)
    data = data_of(api.get("/api/v1/alerts"))
    found = [
        a
        for a in data.get("alerts") or []
        if isinstance(a, dict) and (state is None or a.get("state") == state)
    ]
    items = []
    for a in found[:limit]:
        labels = dict(a.get("labels") or {})
        notes = a.get("annotations") or {}
        items.append(
            {
                "name": labels.pop("alertname", None),
                "state": a.get("state"),
                "labels": labels,
                "summary": httpkit.clip(notes.get("summary") or notes.get("description"), 300)
                or None,
                "active_at": a.get("activeAt"),
                "value": a.get("value"),
            }
        )
    return {"items": items, "count": len(found)}


ACTIONS = {"query": instant, "query_range": ranged, "targets": targets, "alerts": alerts}


def run(args: dict[str, Any]) -> dict[str, Any]:
    action, handler = skillkit.action_of(args, ACTIONS, "query")
    api = client()
    with httpkit.answer_shape("Prometheus", IndexError):
        return {"action": action, **handler(api, args, time.time())}


if __name__ == "__main__":
    skillkit.main("prometheus", run)
