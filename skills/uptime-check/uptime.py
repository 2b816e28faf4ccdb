"""uptime-check: is each URL up? Status, latency, TLS expiry, expected status and text.

The URLs are the model's choice, so every request goes through http-request's allowlist
policy (NEXFLOW_HTTP_ALLOW; private addresses refused unless an IP/CIDR entry allows
them; redirects checked; size and time capped). Targets are checked one after another.
Nothing the server wrote is echoed back: only numbers, our own words and the URLs given.
"""

from __future__ import annotations

import http
import sys
import time
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "_lib"))
import skillkit
import webkit

MAX_TARGETS = 10
TIMEOUT_DEFAULT = 8.0
TIMEOUT_LIMIT = 15.0
TLS_WARN_DAYS = 14
BODY_CAP = 1024 * 1024
TEXT_CHARS = 200
BUDGET = 170.0  # seconds for the whole call; the SKILL.md's timeoutSec is 200


def targets_of(args: dict[str, Any]) -> list[dict[str, Any]]:
    raw = args.get("urls")
    if raw is None and "url" in args:
        raw = [args["url"]]
    if not isinstance(raw, list) or not raw:
        raise skillkit.Refused("give 'url' or 'urls' (a list of URLs or {url, ...} objects)")
    if len(raw) > MAX_TARGETS:
        raise skillkit.Refused(f"at most {MAX_TARGETS} URLs per call, got {len(raw)}")
    found = []
    for item in raw:
        spec = {"url": item} if isinstance(item, str) else item
        if not isinstance(spec, dict) or not isinstance(spec.get("url"), str):
            raise skillkit.Refused("each entry of 'urls' must be a URL or an object with 'url'")
        status = spec.get("expect_status", args.get("expect_status"))
        if status is not None and not (isinstance(status, int) and 100 <= status <= 599):
            raise skillkit.Refused("'expect_status' must be an HTTP status code (100-599)")
        text = spec.get("expect_text", args.get("expect_text"))
        if text is not None and (not isinstance(text, str) or not 0 < len(text) <= TEXT_CHARS):
            raise skillkit.Refused(f"'expect_text' must be 1 to {TEXT_CHARS} characters")
        found.append({"url": spec["url"].strip(), "expect_status": status, "expect_text": text})
    return found


def not_checked(url: str) -> dict[str, Any]:
    return {
        "url": url,
        "up": False,
        "status": None,
        "latency_ms": None,
        "tls_days_left": None,
        "problems": [f"not checked: the call's {BUDGET:g} s budget ran out"],
    }


def check(target: dict[str, Any], policy: Any, timeout: float) -> dict[str, Any]:
    url = target["url"]
    row = not_checked(url)
    row["problems"] = []
    try:
        resp = webkit.request(url, policy, max_bytes=BODY_CAP, timeout=timeout)
    except skillkit.Refused as e:
        row["problems"].append(f"refused: {e}")
        return row
    except (skillkit.Failed, TimeoutError) as e:
        row["problems"].append(str(e))
        return row
    row["status"] = resp.status
    row["latency_ms"] = round(resp.elapsed_ms, 1)
    if resp.redirects:  # the count only: the Location URLs are the server's words
        row["redirects"] = len(resp.redirects)
    expected = target["expect_status"]
    if expected is not None and resp.status != expected:
        row["problems"].append(f"status {resp.status}, expected {expected}")
    elif expected is None and resp.status >= 400:
        row["problems"].append(f"status {resp.status} {phrase(resp.status)}".rstrip())
    text = target["expect_text"]
    if text is not None:
        found = text in resp.text()
        row["text_found"] = found
        if not found:
            row["problems"].append(f"text {text!r} not found in the body")
    parts = urlsplit(url)
    if parts.scheme == "https" and parts.hostname:
        tls(row, parts.hostname, parts.port or 443, policy, timeout)
    row["up"] = not row["problems"]
    return row


def tls(row: dict[str, Any], host: str, port: int, policy: Any, timeout: float) -> None:
    try:
        expires = webkit.tls_expiry(host, port, policy, timeout)
    except (skillkit.Refused, skillkit.Failed, TimeoutError) as e:
        row["problems"].append(f"TLS check: {e}")
        return
    days = (expires - time.time()) / 86400
    row["tls_days_left"] = round(days, 1)
    row["tls_expires"] = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(expires))
    if days < 0:
        row["problems"].append("TLS certificate expired")
    elif days < TLS_WARN_DAYS:
        row["tls_warning"] = f"certificate expires in {days:.0f} days"


def phrase(status: int) -> str:
    try:
        return http.HTTPStatus(status).phrase
    except ValueError:
        return ""


def table(rows: list[dict[str, Any]]) -> str:
    lines = [f"{'STATE':<5} {'CODE':>4} {'MS':>7} {'TLS':>6}  URL"]
    for r in rows:
        code = r["status"] if r["status"] is not None else "-"
        ms = f"{r['latency_ms']:.0f}" if r["latency_ms"] is not None else "-"
        days = f"{r['tls_days_left']:.0f}d" if r["tls_days_left"] is not None else "-"
        note = f"  ({'; '.join(r['problems'])})" if r["problems"] else ""
        state = "up" if r["up"] else "DOWN"
        lines.append(f"{state:<5} {code!s:>4} {ms:>7} {days:>6}  {r['url']}{note}")
    return "\n".join(lines)


def run(args: dict[str, Any]) -> dict[str, Any]:
    targets = targets_of(args)
    timeout = args.get("timeout_sec", TIMEOUT_DEFAULT)
    if isinstance(timeout, bool) or not isinstance(timeout, int | float):
        timeout = -1
    if not 0 < timeout <= TIMEOUT_LIMIT:
        raise skillkit.Refused(f"'timeout_sec' must be above 0 and at most {TIMEOUT_LIMIT:g}")
    policy = webkit.allowlist()
    for t in targets:  # a host off the allowlist refuses the whole call, before any request
        webkit.check_url(t["url"], policy)
    deadline = time.monotonic() + BUDGET
    rows = []
    for t in targets:
        if time.monotonic() + 2 * timeout > deadline:  # a request and a TLS handshake
            rows.append(not_checked(t["url"]))
        else:
            rows.append(check(t, policy, float(timeout)))
    up = sum(r["up"] for r in rows)
    return {"up": up, "down": len(rows) - up, "checks": rows, "table": table(rows)}


if __name__ == "__main__":
    skillkit.main("uptime-check", run)
