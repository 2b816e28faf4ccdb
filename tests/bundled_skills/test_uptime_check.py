"""uptime-check against loopback sites (HTTP and HTTPS with a real certificate)."""

from __future__ import annotations

import importlib
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from bundled_support import BUNDLED, call_skill, framed, refusal, run_skill, skill_gateway
from fakes_loopback import make_cert
from fakes_web import Answer, Site, page

from nexflow.skills.isolation import IsolationLevel

LOOPBACK = {"NEXFLOW_HTTP_ALLOW": "127.0.0.1"}


@pytest.fixture
def site() -> Iterator[Site]:
    with Site() as fake:
        fake.pages["/health"] = page("status: ok", ctype="text/plain")
        fake.pages["/down"] = page("<h1>maintenance</h1>", 503)
        fake.pages["/moved"] = Answer(302, b"", {"Location": "/health"})
        fake.pages["/slow"] = Answer(200, b"late", delay=3)
        yield fake


def by_url(data: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {row["url"]: row for row in data["checks"]}


async def test_up_and_down_table(workspace: Path, site: Site, level: IsolationLevel) -> None:
    health, down, moved = f"{site.url}/health", f"{site.url}/down", f"{site.url}/moved"
    payload = {"urls": [{"url": health, "expect_text": "ok"}, down, moved]}
    r = await run_skill("uptime-check", payload, workspace, LOOPBACK, level=level)
    assert r.ok and r.data is not None, r.stderr_tail
    assert (r.data["up"], r.data["down"]) == (2, 1)
    rows = by_url(r.data)
    assert rows[health]["up"] is True and rows[health]["status"] == 200
    assert rows[health]["text_found"] is True and rows[health]["problems"] == []
    assert 0 < rows[health]["latency_ms"] < 5000 and rows[health]["tls_days_left"] is None
    assert rows[down]["up"] is False and rows[down]["problems"] == [
        "status 503 Service Unavailable"
    ]
    assert rows[moved]["up"] is True and rows[moved]["redirects"] == 1
    lines = r.data["table"].splitlines()
    assert lines[0].split() == ["STATE", "CODE", "MS", "TLS", "URL"]
    assert lines[1].split()[:2] == ["up", "200"] and lines[1].split()[4] == health
    assert lines[2].startswith("DOWN") and "(status 503 Service Unavailable)" in lines[2]
    assert "maintenance" not in str(r.data)  # nothing the server wrote is echoed


async def test_expectations_and_network_errors(workspace: Path, site: Site) -> None:
    health, slow, closed = f"{site.url}/health", f"{site.url}/slow", "http://127.0.0.1:9/"
    payload = {
        "urls": [health, {"url": health, "expect_text": "healthy"}, slow, closed],
        "expect_status": 204,
        "timeout_sec": 0.5,
    }
    started = time.monotonic()
    r = await run_skill("uptime-check", payload, workspace, LOOPBACK)
    assert r.ok and r.data is not None, r.stderr_tail
    assert time.monotonic() - started < 10
    first, second, late, refused = r.data["checks"]
    assert first["problems"] == ["status 200, expected 204"]
    assert second["problems"] == [
        "status 200, expected 204",
        "text 'healthy' not found in the body",
    ]
    assert late["problems"] == ["127.0.0.1 did not answer within 0.5 s"] and late["status"] is None
    assert refused["problems"] == ["127.0.0.1: connection refused"]
    assert r.data["up"] == 0 and r.data["down"] == 4


async def test_tls_untrusted_certificate_is_down(workspace: Path) -> None:
    cert = make_cert(workspace)
    with Site(tls=cert.server) as secure:
        secure.pages["/"] = page("hello")
        r = await run_skill("uptime-check", {"url": f"{secure.url}/"}, workspace, LOOPBACK)
    assert r.ok and r.data is not None, r.stderr_tail
    (row,) = r.data["checks"]
    assert row["up"] is False
    assert row["problems"] == ["127.0.0.1: TLS certificate not trusted (self-signed certificate)"]


def test_tls_expiry_reads_the_verified_certificate(
    workspace: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The probe the skill runs for https, in process with a context trusting the test CA
    (the program itself trusts only the system's CAs)."""
    monkeypatch.syspath_prepend(str(BUNDLED / "_lib"))
    webkit = importlib.import_module("webkit")
    cert = make_cert(workspace, days=30)
    with Site(tls=cert.server) as secure:
        policy = webkit.Policy("127.0.0.1", None)
        expires = webkit.tls_expiry("127.0.0.1", secure.port, policy, 5.0, cert.client)
        days = (expires - time.time()) / 86400
        assert 29 < days <= 30
        with pytest.raises(webkit.skillkit.Refused, match="private/loopback"):
            webkit.tls_expiry("localhost", secure.port, webkit.Policy("*", None), 5.0)


@pytest.mark.parametrize(
    ("allow", "payload", "why"),
    [
        ("example.com", {"url": "http://127.0.0.1:9/"}, "'127.0.0.1' is not on the allowlist"),
        ("*", {"url": "ftp://example.com/"}, "is not an http(s) URL"),
        ("*", {"urls": ["http://example.com/"] * 11}, "at most 10 URLs per call"),
        ("*", {}, "give 'url' or 'urls'"),
        ("*", {"url": "http://example.com/", "expect_status": 42}, "'expect_status' must"),
        ("*", {"url": "http://example.com/", "timeout_sec": 60}, "'timeout_sec' must"),
    ],
)
async def test_refused_before_any_request(
    workspace: Path, allow: str, payload: dict[str, object], why: str
) -> None:
    r = await run_skill("uptime-check", payload, workspace, {"NEXFLOW_HTTP_ALLOW": allow})
    assert why in refusal(r)


async def test_private_address_refused_per_url(workspace: Path, site: Site) -> None:
    sneaky = f"http://localhost:{site.port}/health"
    payload = {"urls": [f"{site.url}/health", sneaky]}
    r = await run_skill("uptime-check", payload, workspace, {"NEXFLOW_HTTP_ALLOW": "localhost"})
    assert "'127.0.0.1' is not on the allowlist" in refusal(r)
    r = await run_skill(
        "uptime-check", {"url": sneaky}, workspace, {"NEXFLOW_HTTP_ALLOW": "localhost"}
    )
    assert r.ok and r.data is not None
    (row,) = r.data["checks"]
    assert row["up"] is False and "a private/loopback" in row["problems"][0]
    assert site.requests == []


async def test_uptime_through_the_gateway(home: Path, site: Site) -> None:
    async with skill_gateway(home, {"uptime-check": LOOPBACK}) as gw:
        reply, tool, _ = await call_skill(
            gw, "uptime-check", {"urls": [f"{site.url}/health", f"{site.url}/down"]}
        )
        assert "status 503 Service Unavailable" in reply["reply"]
        trust, result = framed(tool)
        assert trust == "trusted" and (result["up"], result["down"]) == (1, 1)
