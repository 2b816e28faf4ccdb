"""alertmanager: list alerts and silences, create a silence, expire one (API v2).

ALERTMANAGER_URL comes from the admin (config ``skills.secrets``), with an optional
ALERTMANAGER_TOKEN (a Bearer token); ``user:password@`` in the URL is Basic auth.
Creating and expiring silences are declared ``write`` with ``confirm: true``: the
gateway asks the user before each one.
"""

from __future__ import annotations

import json
import os
import re
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "_lib"))
import httpkit
import skillkit

MATCHER = re.compile(r"^\s*([a-zA-Z_][a-zA-Z0-9_]*)\s*(=~|!~|!=|=)\s*(.*?)\s*$")
SILENCE_ID = re.compile(r"^[0-9a-fA-F-]{8,64}$")
DURATION = re.compile(r"(\d+)(m|h|d|w)")
UNITS = {"m": 60, "h": 3600, "d": 86400, "w": 604800}
MAX_DURATION = 30 * 86400
MAX_MATCHERS = 20
LIST_DEFAULT, LIST_MAX = 50, 200


def client() -> httpkit.Client:
    headers = {}
    token = os.environ.get("ALERTMANAGER_TOKEN", "").strip()
    if token:
        headers["Authorization"] = f"Bearer {token}"
    return httpkit.Client(
        httpkit.base_url("ALERTMANAGER_URL"), service="Alertmanager", headers=headers
    )


# -- matchers ----------------------------------------------------------------------------


def parse_matcher(text: object) -> dict[str, Any]:
    """``severity=~"crit.*"`` → Alertmanager's ``{name, value, isRegex, isEqual}``."""
    m = MATCHER.match(text) if isinstance(text, str) else None
    if m is None:
        raise skillkit.Refused(
            f'matcher {text!r} must look like name="value" (operators = != =~ !~)'
        )
    name, op, raw = m.groups()
    value = raw
    if len(raw) >= 2 and raw[0] == raw[-1] == '"':
        try:
            value = json.loads(raw)
        except ValueError:
            raise skillkit.Refused(f"matcher {text!r} has a badly quoted value") from None
    if "~" in op:
        try:
            re.compile(value)
        except re.error as e:
            raise skillkit.Refused(f"matcher {text!r}: not a regular expression ({e})") from None
    return {"name": name, "value": value, "isRegex": "~" in op, "isEqual": "!" not in op}


def matchers_of(args: dict[str, Any], *, required: bool) -> list[dict[str, Any]]:
    raw = args.get("matchers")
    if raw is None:
        raw = []
    if isinstance(raw, str):
        raw = [raw]
    if not isinstance(raw, list) or len(raw) > MAX_MATCHERS:
        raise skillkit.Refused(f"'matchers' must be a list of at most {MAX_MATCHERS} matchers")
    if required and not raw:
        raise skillkit.Refused("'matchers' must name at least one label, e.g. alertname=\"X\"")
    return [parse_matcher(item) for item in raw]


OPERATORS = {(False, True): "=", (False, False): "!=", (True, True): "=~", (True, False): "!~"}


def render(m: dict[str, Any]) -> str:
    op = OPERATORS[(bool(m.get("isRegex")), bool(m.get("isEqual", True)))]
    return f"{m.get('name')}{op}{json.dumps(m.get('value'), ensure_ascii=False)}"


def matches_empty(m: dict[str, Any]) -> bool:
    """True when the matcher matches an alert that lacks the label (value "")."""
    hit = re.fullmatch(m["value"], "") is not None if m["isRegex"] else m["value"] == ""
    return hit == m["isEqual"]


# -- time --------------------------------------------------------------------------------


def iso(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.000Z")


def parse_time(value: object, key: str) -> datetime:
    if not isinstance(value, str):
        raise skillkit.Refused(f"'{key}' must be an RFC 3339 time like 2026-12-01T18:00:00Z")
    try:
        moment = datetime.fromisoformat(value.strip().replace("Z", "+00:00"))
    except ValueError:
        raise skillkit.Refused(
            f"'{key}' must be an RFC 3339 time like 2026-12-01T18:00:00Z"
        ) from None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def parse_duration(value: object) -> timedelta:
    text = value.strip() if isinstance(value, str) else ""
    pos, seconds = 0, 0
    for m in DURATION.finditer(text):
        if m.start() != pos:
            break
        seconds += int(m.group(1)) * UNITS[m.group(2)]
        pos = m.end()
    if not text or pos != len(text) or seconds <= 0:
        raise skillkit.Refused("'duration' must look like 30m, 2h, 1d or 1h30m")
    return timedelta(seconds=seconds)


# -- rendering ---------------------------------------------------------------------------


def alert_item(a: dict[str, Any]) -> dict[str, Any]:
    labels = dict(a.get("labels") or {})
    notes = a.get("annotations") or {}
    status = a.get("status") or {}
    return {
        "name": labels.pop("alertname", None),
        "state": status.get("state"),
        "severity": labels.get("severity"),
        "labels": labels,
        "summary": httpkit.clip(notes.get("summary") or notes.get("description"), 300) or None,
        "starts_at": a.get("startsAt"),
        "silenced_by": status.get("silencedBy") or [],
        "inhibited_by": status.get("inhibitedBy") or [],
        "receivers": [r.get("name") for r in a.get("receivers") or [] if isinstance(r, dict)],
        "fingerprint": a.get("fingerprint"),
    }


def silence_item(s: dict[str, Any]) -> dict[str, Any]:
    return {
        "id": s.get("id"),
        "state": (s.get("status") or {}).get("state"),
        "matchers": [render(m) for m in s.get("matchers") or [] if isinstance(m, dict)],
        "starts_at": s.get("startsAt"),
        "ends_at": s.get("endsAt"),
        "created_by": s.get("createdBy"),
        "comment": httpkit.clip(s.get("comment"), 300),
    }


def limit_of(args: dict[str, Any]) -> int:
    return skillkit.positive_int(args, "limit", LIST_DEFAULT, most=LIST_MAX)


# -- actions -----------------------------------------------------------------------------


def list_alerts(api: httpkit.Client, args: dict[str, Any]) -> dict[str, Any]:
    matchers = matchers_of(args, required=False)
    params: dict[str, Any] = {"filter": [render(m) for m in matchers]}
    for key in ("active", "silenced", "inhibited"):
        value = args.get(key)
        if value is not None:
            if not isinstance(value, bool):
                raise skillkit.Refused(f"'{key}' must be true or false")
            params[key] = value
    limit = limit_of(args)
    found = [a for a in api.get("/api/v2/alerts", params) if isinstance(a, dict)]
    return {"items": [alert_item(a) for a in found[:limit]], "count": len(found)}


def list_silences(api: httpkit.Client, args: dict[str, Any]) -> dict[str, Any]:
    matchers = matchers_of(args, required=False)
    state = args.get("state")
    if state is not None and state not in ("active", "pending", "expired"):
        raise skillkit.Refused("'state' must be active, pending or expired")
    limit = limit_of(args)
    found = api.get("/api/v2/silences", {"filter": [render(m) for m in matchers]})
    chosen = [
        s
        for s in found
        if isinstance(s, dict) and (state is None or (s.get("status") or {}).get("state") == state)
    ]
    return {"items": [silence_item(s) for s in chosen[:limit]], "count": len(chosen)}


def create_silence(api: httpkit.Client, args: dict[str, Any]) -> dict[str, Any]:
    matchers = matchers_of(args, required=True)
    if all(matches_empty(m) for m in matchers):
        raise skillkit.Refused(
            "at least one matcher must require a non-empty value: this silence would "
            "match every alert"
        )
    comment = args.get("comment")
    if not isinstance(comment, str) or not comment.strip() or len(comment) > 1000:
        raise skillkit.Refused("'comment' must say why (1-1000 characters)")
    created_by = args.get("created_by", "nexflow")
    if not isinstance(created_by, str) or not created_by.strip() or len(created_by) > 100:
        raise skillkit.Refused("'created_by' must be a name (1-100 characters)")
    now = datetime.now(UTC)
    starts = parse_time(args["starts_at"], "starts_at") if "starts_at" in args else now
    if "ends_at" in args:
        ends = parse_time(args["ends_at"], "ends_at")
    elif "duration" in args:
        ends = starts + parse_duration(args["duration"])
    else:
        raise skillkit.Refused("give 'duration' (e.g. 2h) or 'ends_at'")
    if ends <= max(starts, now):
        raise skillkit.Refused("the silence must end after it starts, and in the future")
    if ends - starts > timedelta(seconds=MAX_DURATION):
        raise skillkit.Refused("a silence may last at most 30 days")
    body = {
        "matchers": matchers,
        "startsAt": iso(starts),
        "endsAt": iso(ends),
        "createdBy": created_by.strip(),
        "comment": comment.strip(),
    }
    answer = api.post("/api/v2/silences", body)
    sid = answer.get("silenceID")
    if not isinstance(sid, str) or not sid:
        raise skillkit.Failed("Alertmanager did not return the new silence's id")
    affected = api.get("/api/v2/alerts", {"filter": [render(m) for m in matchers]})
    return {
        "silence_id": sid,
        "matchers": [render(m) for m in matchers],
        "starts_at": body["startsAt"],
        "ends_at": body["endsAt"],
        "affected_alerts": len(affected) if isinstance(affected, list) else None,
        "url": f"{api.base}/#/silences/{sid}",
    }


def expire_silence(api: httpkit.Client, args: dict[str, Any]) -> dict[str, Any]:
    sid = args.get("silence_id")
    if not isinstance(sid, str) or not SILENCE_ID.match(sid):
        raise skillkit.Refused("'silence_id' must be a silence id (from action 'silences')")
    api.delete(f"/api/v2/silence/{httpkit.segment(sid)}")
    return {"silence_id": sid, "expired": True}


ACTIONS = {
    "alerts": list_alerts,
    "silences": list_silences,
    "silence": create_silence,
    "expire": expire_silence,
}


def run(args: dict[str, Any]) -> dict[str, Any]:
    action, handler = skillkit.action_of(args, ACTIONS, "alerts")
    api = client()
    with httpkit.answer_shape("Alertmanager"):
        return {"action": action, **handler(api, args)}


if __name__ == "__main__":
    skillkit.main("alertmanager", run)
