"""home-assistant: list states, read one entity, call a service (Home Assistant REST API).

HA_URL (the instance, e.g. http://homeassistant.local:8123) and HA_TOKEN (a long-lived
access token) are set by the admin and granted to this skill. Entity ids, domains and
service names are checked against Home Assistant's own naming rule before they go into a
URL path, so the input cannot reach any other endpoint.
"""

from __future__ import annotations

import re
import sys
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "_lib"))
import skillkit
import webkit

SLUG = re.compile(r"^[a-z0-9_]{1,64}$")
ENTITY = re.compile(r"^[a-z0-9_]{1,64}\.[a-z0-9_]{1,128}$")
LIST_DEFAULT = 100
LIST_LIMIT = 500
ATTRS_KEPT = 40
VALUE_CHARS = 300
TIMEOUT = 10.0
ACTIONS = ("list_states", "get_state", "call_service")


def slug(args: dict[str, Any], key: str, *, required: bool) -> str | None:
    value = args.get(key)
    if value is None and not required:
        return None
    if not isinstance(value, str) or not SLUG.match(value):
        raise skillkit.Refused(f"{key!r} must be a name like 'light' (a-z, 0-9, _), got {value!r}")
    return value


def entity_id(value: object) -> str:
    if not isinstance(value, str) or not ENTITY.match(value):
        raise skillkit.Refused(f"'entity_id' must look like 'light.kitchen', got {value!r}")
    return value


def call(path: str, *, body: Any = None) -> Any:
    base, policy = webkit.configured("HA_URL")
    token = skillkit.env("HA_TOKEN")
    resp = webkit.request(
        base + path,
        policy,
        method="POST" if body is not None else "GET",
        headers={"Authorization": f"Bearer {token}", "Accept": "application/json"},
        json_body=body,
        max_bytes=webkit.MAX_BYTES,
        timeout=TIMEOUT,
    )
    if resp.status == 401:
        raise skillkit.Failed("Home Assistant rejected HA_TOKEN (401); create a new token")
    if resp.status == 404 and path.startswith("/api/states/"):
        raise skillkit.Failed(f"Home Assistant has no entity {path.rsplit('/', 1)[1]!r}")
    if resp.status >= 400:
        message = ""
        if resp.content_type == "application/json":
            data = resp.json("Home Assistant")
            message = data.get("message", "") if isinstance(data, dict) else ""
        message = message or resp.text()[:200].strip()
        raise skillkit.Failed(f"Home Assistant answered {resp.status}: {webkit.clip(message, 200)}")
    return resp.json("Home Assistant")


def brief(state: Any) -> dict[str, Any]:
    if not isinstance(state, dict):
        raise skillkit.Failed("Home Assistant sent a state that is not an object")
    attrs = state.get("attributes") if isinstance(state.get("attributes"), dict) else {}
    out = {
        "entity_id": webkit.clip(state.get("entity_id"), 200),
        "state": webkit.clip(state.get("state"), VALUE_CHARS),
        "name": webkit.clip(attrs.get("friendly_name") or "", 200),
    }
    if attrs.get("unit_of_measurement"):
        out["unit"] = webkit.clip(attrs["unit_of_measurement"], 40)
    return out


def full(state: Any) -> dict[str, Any]:
    out = brief(state)
    attrs = state.get("attributes") if isinstance(state.get("attributes"), dict) else {}
    out["attributes"] = {
        webkit.clip(k, 100): v if isinstance(v, int | float | bool) else webkit.clip(v, VALUE_CHARS)
        for k, v in list(attrs.items())[:ATTRS_KEPT]
    }
    out["last_changed"] = webkit.clip(state.get("last_changed"), 40)
    out["last_updated"] = webkit.clip(state.get("last_updated"), 40)
    return out


def list_states(args: dict[str, Any]) -> dict[str, Any]:
    domain = slug(args, "domain", required=False)
    limit = args.get("max_results", LIST_DEFAULT)
    if not isinstance(limit, int) or not 1 <= limit <= LIST_LIMIT:
        raise skillkit.Refused(f"'max_results' must be 1 to {LIST_LIMIT}")
    states = call("/api/states")
    if not isinstance(states, list):
        raise skillkit.Failed("Home Assistant sent a state list that is not a list")
    picked = [
        s
        for s in states
        if isinstance(s, dict)
        and (not domain or str(s.get("entity_id", "")).startswith(f"{domain}."))
    ]
    picked.sort(key=lambda s: str(s.get("entity_id", "")))
    return {
        "domain": domain,
        "total": len(picked),
        "entities": [brief(s) for s in picked[:limit]],
        "truncated": len(picked) > limit,
    }


def call_service(args: dict[str, Any]) -> dict[str, Any]:
    domain = slug(args, "domain", required=True)
    service = slug(args, "service", required=True)
    data = args.get("data") or {}
    if not isinstance(data, dict):
        raise skillkit.Refused("'data' must be an object of service fields")
    if "entity_id" in args:
        data = {**data, "entity_id": entity_id(args["entity_id"])}
    changed = call(f"/api/services/{domain}/{service}", body=data)
    changed = changed if isinstance(changed, list) else []
    return {
        "called": f"{domain}.{service}",
        "data": data,
        "changed": [brief(s) for s in changed[:LIST_DEFAULT]],
    }


def run(args: dict[str, Any]) -> dict[str, Any]:
    action = args.get("action")
    if action == "list_states":
        return list_states(args)
    if action == "get_state":
        return full(call(f"/api/states/{entity_id(args.get('entity_id'))}"))
    if action == "call_service":
        return call_service(args)
    raise skillkit.Refused(f"'action' must be one of {', '.join(ACTIONS)}, got {action!r}")


if __name__ == "__main__":
    skillkit.main("home-assistant", run)
