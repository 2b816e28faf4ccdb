"""http-request through the real SkillRunner against a local server on 127.0.0.1."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from mvp_support import RunSkill, bundled, make_runner

from nexflow.skills import SkillPermissionDenied
from nexflow.skills.isolation import IsolationLevel

LOOPBACK = {"NEXFLOW_HTTP_ALLOW": "127.0.0.1"}


class Handler(BaseHTTPRequestHandler):
    def log_message(self, format: str, *args: object) -> None:
        pass

    def _send(self, status: int, body: bytes, headers: dict[str, str] | None = None) -> None:
        self.send_response(status)
        for key, value in (headers or {}).items():
            self.send_header(key, value)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self) -> None:
        port = self.server.server_address[1]
        if self.path == "/json":
            self._send(200, b'{"hello": "world"}', {"Content-Type": "application/json"})
        elif self.path == "/big":
            self._send(200, b"x" * 200_000)
        elif self.path == "/big-chunked":
            self.send_response(200)
            self.end_headers()  # no Content-Length: read until close
            for _ in range(50):
                self.wfile.write(b"y" * 10_000)
        elif self.path == "/slow":
            time.sleep(2)
            self._send(200, b"late")
        elif self.path == "/drip":
            self.send_response(200)
            self.send_header("Content-Length", "100")
            self.end_headers()
            for _ in range(30):
                self.wfile.write(b"z")
                self.wfile.flush()
                time.sleep(0.1)
        elif self.path == "/hop":
            self._send(302, b"", {"Location": "/json"})
        elif self.path == "/to-localhost":
            self._send(302, b"", {"Location": f"http://localhost:{port}/json"})
        elif self.path == "/to-metadata":
            self._send(302, b"", {"Location": "http://169.254.169.254/latest/meta-data/"})
        elif self.path == "/binary":
            self._send(200, bytes([0xFF, 0xFE, 0x00]))
        else:
            self._send(404, b"nope")

    def do_POST(self) -> None:
        length = int(self.headers.get("Content-Length", "0"))
        body = self.rfile.read(length)
        echo = {"got": json.loads(body), "type": self.headers.get("Content-Type")}
        self._send(201, json.dumps(echo).encode(), {"Content-Type": "application/json"})


class QuietServer(ThreadingHTTPServer):
    daemon_threads = True

    def handle_error(self, request: object, client_address: object) -> None:
        pass  # the skill hanging up on /slow and /drip is the point of those tests


@pytest.fixture(scope="module")
def server() -> Iterator[str]:
    httpd = QuietServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}"
    httpd.shutdown()
    httpd.server_close()


async def test_get_json_with_loopback_allowed(
    run_skill: RunSkill, server: str, level: IsolationLevel
) -> None:
    r = await run_skill("http-request", {"url": f"{server}/json"}, secrets=LOOPBACK, level=level)
    assert r.ok, (r.error, r.stderr_tail)
    assert r.data is not None
    assert r.data["status"] == 200 and json.loads(r.data["body"]) == {"hello": "world"}
    assert r.data["headers"]["content-type"] == "application/json"
    assert r.data["redirects"] == []


async def test_post_json_redirect_and_binary(run_skill: RunSkill, server: str) -> None:
    r = await run_skill(
        "http-request",
        {"url": f"{server}/api", "method": "POST", "json": {"n": [1, 2]}},
        secrets=LOOPBACK,
    )
    assert r.ok and r.data is not None and r.data["status"] == 201
    assert json.loads(r.data["body"]) == {"got": {"n": [1, 2]}, "type": "application/json"}
    r = await run_skill("http-request", {"url": f"{server}/hop"}, secrets=LOOPBACK)
    assert r.ok and r.data is not None
    assert r.data["url"] == f"{server}/json" and r.data["redirects"] == [f"{server}/hop"]
    r = await run_skill("http-request", {"url": f"{server}/binary"}, secrets=LOOPBACK)
    assert r.ok and r.data is not None and r.data["encoding"] == "base64"
    r = await run_skill("http-request", {"url": f"{server}/missing"}, secrets=LOOPBACK)
    assert r.ok and r.data is not None and r.data["status"] == 404


@pytest.mark.parametrize(
    ("allow", "url", "why"),
    [
        ("127.0.0.1", "http://example.com/", "not on the allowlist"),
        ("*", "http://10.1.2.3/", "10.1.2.3, a private"),
        ("*", "http://169.254.169.254/latest/meta-data/", "link-local"),
        ("*", "http://[::1]:9/", "::1, a private"),
        ("*", "http://[::ffff:127.0.0.1]:9/", "127.0.0.1, a private"),
        ("*", "http://localhost:9/", "127.0.0.1, a private"),
        ("localhost", "http://localhost:9/", "a private/loopback"),
        ("*", "http://0.0.0.0:9/", "0.0.0.0"),
        ("*", "file:///etc/passwd", "only http and https"),
        ("*", "http://user:pw@example.com/", "credentials in the URL"),
        ("*.example.com", "http://example.com.evil.net/", "not on the allowlist"),
    ],
)
async def test_refusals(run_skill: RunSkill, allow: str, url: str, why: str) -> None:
    r = await run_skill("http-request", {"url": url}, secrets={"NEXFLOW_HTTP_ALLOW": allow})
    assert not r.ok and r.exit_code == 2, r.stderr_tail
    assert "refused" in r.stderr_tail and why in r.stderr_tail


async def test_loopback_needs_explicit_range(run_skill: RunSkill, server: str) -> None:
    r = await run_skill(
        "http-request", {"url": f"{server}/json"}, secrets={"NEXFLOW_HTTP_ALLOW": "*"}
    )
    assert not r.ok and "127.0.0.1, a private/loopback" in r.stderr_tail
    allow = {"NEXFLOW_HTTP_ALLOW": "*, 127.0.0.0/8"}
    r = await run_skill("http-request", {"url": f"{server}/json"}, secrets=allow)
    assert r.ok
    r = await run_skill(
        "http-request", {"url": f"{server}/json", "allow_hosts": ["api.github.com"]}, secrets=allow
    )
    assert not r.ok and "not in this request's allow_hosts" in r.stderr_tail


async def test_redirects_to_disallowed_hosts_refused(run_skill: RunSkill, server: str) -> None:
    for path in ("/to-localhost", "/to-metadata"):
        r = await run_skill("http-request", {"url": f"{server}{path}"}, secrets=LOOPBACK)
        assert not r.ok and "not on the allowlist" in r.stderr_tail, r.stderr_tail


async def test_size_caps(run_skill: RunSkill, server: str) -> None:
    r = await run_skill(
        "http-request", {"url": f"{server}/big", "max_bytes": 1000}, secrets=LOOPBACK
    )
    assert not r.ok and "the response is 200000 bytes; the limit is 1000" in r.stderr_tail
    r = await run_skill(
        "http-request", {"url": f"{server}/big-chunked", "max_bytes": 50_000}, secrets=LOOPBACK
    )
    assert not r.ok and "larger than the limit of 50000" in r.stderr_tail


async def test_time_caps(run_skill: RunSkill, server: str) -> None:
    for path in ("/slow", "/drip"):
        started = time.monotonic()
        r = await run_skill(
            "http-request", {"url": f"{server}{path}", "timeout_sec": 0.5}, secrets=LOOPBACK
        )
        assert not r.ok and "timed out after 0.5 s" in r.stderr_tail, r.stderr_tail
        assert time.monotonic() - started < 2.0


async def test_allowlist_must_be_granted(server: str, workspace: Path) -> None:
    skill = bundled("http-request", LOOPBACK)
    with pytest.raises(SkillPermissionDenied, match="NEXFLOW_HTTP_ALLOW"):
        await make_runner().run(skill, {"url": f"{server}/json"}, workspace=workspace)
