"""The browser guard: foreign Host (DNS rebinding) and Origin refused, JSON-only API bodies,
security headers; web users identified by their tokens. A real uvicorn, real sockets."""

import asyncio
import json
from pathlib import Path

import httpx
import pytest
import websockets

from nexflow.config import ConfigError, load_config
from nexflow.testing.harness import GatewayHarness

EVIL = "http://evil.example"
OWNER_TOKEN = "owner-token-0123456789abcdef"
ALICE_TOKEN = "alice-token-0123456789abcdef"


def write_config(home: Path, text: str) -> Path:
    home.mkdir(parents=True, exist_ok=True)
    path = home / "config.yml"
    path.write_text(text)
    return path


async def ws_handshake(port: int, path: str, headers: dict[str, str]) -> int:
    """Send a WebSocket upgrade by hand (to set any Host) and return the status code."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    lines = [
        f"GET {path} HTTP/1.1",
        "Upgrade: websocket",
        "Connection: Upgrade",
        "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==",
        "Sec-WebSocket-Version: 13",
        *(f"{name}: {value}" for name, value in headers.items()),
    ]
    writer.write(("\r\n".join(lines) + "\r\n\r\n").encode())
    await writer.drain()
    status = await asyncio.wait_for(reader.readline(), 5)
    writer.close()
    await writer.wait_closed()
    return int(status.split()[1])


async def chat_over_ws(url: str, origin: str | None) -> str:
    kwargs = {"origin": origin} if origin else {}
    async with websockets.connect(url, **kwargs) as ws:
        await ws.send(json.dumps({"type": "message", "message": "over ws"}))
        while True:
            frame = json.loads(await ws.recv())
            if frame["type"] == "reply":
                return str(frame["text"])


def error_code(resp: httpx.Response) -> str:
    return str(resp.json()["error"]["code"])


async def test_cross_site_posts_are_refused(gateway: GatewayHarness) -> None:
    http = gateway.http
    text = await http.post(
        "/api/v1/chat",
        content=b'{"message": "hi"}',
        headers={"Origin": EVIL, "Content-Type": "text/plain"},
    )
    assert text.status_code == 403 and error_code(text) == "forbidden_origin"
    assert "web.allowed_origins" in text.json()["error"]["message"]
    form = await http.post("/api/v1/chat", data={"message": "hi"}, headers={"Origin": EVIL})
    assert form.status_code == 403 and error_code(form) == "forbidden_origin"
    as_json = await http.post("/api/v1/chat", json={"message": "hi"}, headers={"Origin": EVIL})
    assert as_json.status_code == 403
    null = await http.post("/api/v1/chat", json={"message": "hi"}, headers={"Origin": "null"})
    assert null.status_code == 403 and error_code(null) == "forbidden_origin"
    # Same host, another port: another origin.
    port = await http.post(
        "/api/v1/chat", json={"message": "hi"}, headers={"Origin": "http://127.0.0.1:1"}
    )
    assert port.status_code == 403
    fetch_meta = await http.post(
        "/api/v1/chat", json={"message": "hi"}, headers={"Sec-Fetch-Site": "cross-site"}
    )
    assert fetch_meta.status_code == 403 and error_code(fetch_meta) == "forbidden_origin"
    assert gateway.llm.requests == []


async def test_api_bodies_must_be_json(gateway: GatewayHarness) -> None:
    http = gateway.http
    plain = await http.post(
        "/api/v1/chat", content=b'{"message": "hi"}', headers={"Content-Type": "text/plain"}
    )
    assert plain.status_code == 415 and error_code(plain) == "unsupported_media_type"
    assert "Content-Type: application/json" in plain.json()["error"]["message"]
    missing = await http.post("/api/v1/chat", content=b'{"message": "hi"}')
    assert missing.status_code == 415
    form = await http.post("/api/v1/chat", data={"message": "hi"})
    assert form.status_code == 415
    assert gateway.llm.requests == []
    charset = await http.post(
        "/api/v1/chat",
        content=b'{"message": "hi"}',
        headers={"Content-Type": "application/json; charset=utf-8"},
    )
    assert charset.status_code == 200 and charset.json()["reply"] == "Echo: hi"
    suffixed = await http.post(
        "/api/v1/chat",
        content=b'{"message": "again"}',
        headers={"Content-Type": "application/vnd.nexflow+json"},
    )
    assert suffixed.status_code == 200
    # No body, no content type needed (a 404 from the route, not a 415 from the guard).
    empty = await http.post("/api/v1/pairing/telegram/ABCD/approve")
    assert empty.status_code != 415


async def test_foreign_host_is_refused_on_http_and_websockets(gateway: GatewayHarness) -> None:
    http = gateway.http
    rebound = await http.get("/api/v1/sessions", headers={"Host": f"evil.example:{gateway.port}"})
    assert rebound.status_code == 421 and error_code(rebound) == "forbidden_host"
    assert "web.public_hosts" in rebound.json()["error"]["message"]
    assert rebound.headers["x-frame-options"] == "DENY"
    for host in ("127.0.0.1", "localhost", "[::1]", "app.localhost", "127.0.0.2"):
        ok = await http.get("/api/v1/sessions", headers={"Host": f"{host}:{gateway.port}"})
        assert ok.status_code == 200, host
    for path in ("/ws/chat/new", "/ws/logs"):
        status = await ws_handshake(gateway.port, path, {"Host": "evil.example"})
        assert status == 403, path
        status = await ws_handshake(
            gateway.port, path, {"Host": f"127.0.0.1:{gateway.port}", "Origin": EVIL}
        )
        assert status == 403, path


async def test_websockets_refuse_foreign_origins(gateway: GatewayHarness) -> None:
    base = gateway.url.replace("http", "ws")
    for path in ("/ws/chat/new", "/ws/logs"):
        for origin in (EVIL, "null", "https://127.0.0.1.evil.example"):
            with pytest.raises(websockets.InvalidStatus) as info:
                await websockets.connect(base + path, origin=origin)
            assert info.value.response.status_code == 403, (path, origin)
    # The page's own origin and a client without Origin are served.
    assert await chat_over_ws(base + "/ws/chat/new", gateway.url) == "Echo: over ws"
    assert await chat_over_ws(base + "/ws/chat/new", None) == "Echo: over ws"
    async with websockets.connect(base + "/ws/logs", origin=gateway.url) as logs:
        await logs.close()


async def test_own_origin_and_plain_clients_work(gateway: GatewayHarness) -> None:
    http = gateway.http
    own = await http.post("/api/v1/chat", json={"message": "mine"}, headers={"Origin": gateway.url})
    assert own.status_code == 200 and own.json()["reply"] == "Echo: mine"
    via_localhost = await http.post(
        "/api/v1/chat",
        json={"message": "named"},
        headers={
            "Host": f"localhost:{gateway.port}",
            "Origin": f"http://localhost:{gateway.port}",
            "Sec-Fetch-Site": "same-origin",
        },
    )
    assert via_localhost.status_code == 200
    plain = await http.post("/api/v1/chat", json={"message": "curl"})
    assert plain.status_code == 200
    # Reads with a foreign Origin are answered (no CORS headers: the page cannot read them).
    read = await http.get("/api/v1/sessions", headers={"Origin": EVIL})
    assert read.status_code == 200 and "access-control-allow-origin" not in read.headers


async def test_security_headers(gateway: GatewayHarness) -> None:
    page = await gateway.http.get("/")
    assert page.status_code == 200
    csp = page.headers["content-security-policy"]
    assert "frame-ancestors 'none'" in csp and "default-src 'self'" in csp
    assert f"ws://127.0.0.1:{gateway.port}" in csp
    assert page.headers["x-frame-options"] == "DENY"
    assert page.headers["x-content-type-options"] == "nosniff"
    assert page.headers["referrer-policy"] == "no-referrer"
    api = await gateway.http.get("/api/v1/sessions")
    assert api.headers["x-content-type-options"] == "nosniff"
    # Swagger UI is served from the package: the same CSP covers it.
    docs = await gateway.http.get("/docs")
    assert (
        docs.status_code == 200 and "default-src 'self'" in docs.headers["content-security-policy"]
    )
    assert "cdn" not in docs.text.lower()
    assert docs.headers["x-frame-options"] == "DENY"


async def test_configured_hosts_and_origins(tmp_path: Path) -> None:
    home = tmp_path / "home"
    config = write_config(
        home,
        "web:\n"
        "  public_hosts: [nexflow.test, 'lan.test:8443', '*.corp.test']\n"
        "  allowed_origins: ['https://app.example']\n",
    )
    async with GatewayHarness(home, config_file=config) as gw:

        async def host(value: str) -> int:
            return (await gw.http.get("/api/v1/sessions", headers={"Host": value})).status_code

        assert await host("nexflow.test") == 200
        assert await host("NEXFLOW.test:1234") == 200
        assert await host("lan.test:8443") == 200
        assert await host("lan.test:9999") == 421
        assert await host("a.corp.test") == 200
        assert await host("corp.test.evil.example") == 421
        allowed = await gw.http.post(
            "/api/v1/chat", json={"message": "hi"}, headers={"Origin": "https://app.example"}
        )
        assert allowed.status_code == 200
        plain_http = await gw.http.post(
            "/api/v1/chat", json={"message": "hi"}, headers={"Origin": "http://app.example"}
        )
        assert plain_http.status_code == 403
        # Through a proxy that keeps the Host: the page's origin is the gateway's own.
        proxied = await gw.http.post(
            "/api/v1/chat",
            json={"message": "hi"},
            headers={"Host": "nexflow.test", "Origin": "https://nexflow.test"},
        )
        assert proxied.status_code == 200
        ws = gw.url.replace("http", "ws") + "/ws/logs"
        async with websockets.connect(ws, origin="https://app.example") as logs:
            await logs.close()


def test_config_rejects_malformed_hosts_origins_and_users(tmp_path: Path) -> None:
    env = {"NEXFLOW_HOME": str(tmp_path)}
    cases = {
        "web:\n  allowed_origins: ['https://app.example/path']\n": "web.allowed_origins",
        "web:\n  allowed_origins: [app.example]\n": "web.allowed_origins",
        "web:\n  public_hosts: ['https://nexflow.test']\n": "web.public_hosts",
        "web:\n  users: {'Bad Name': 'x123456789abcdefgh'}\n": "web.users",
        "web:\n  users: {bob: short}\n": "web.users.bob",
    }
    for text, key in cases.items():
        with pytest.raises(ConfigError) as info:
            load_config(write_config(tmp_path, text), env)
        assert key in info.value.render(), text


async def test_web_users_act_as_themselves(tmp_path: Path) -> None:
    home = tmp_path / "home"
    config = write_config(home, f"web:\n  users:\n    alice: {ALICE_TOKEN}\n")
    async with GatewayHarness(home, config_file=config, token=OWNER_TOKEN) as gw:
        assert gw.app is not None
        alice = {"Authorization": f"Bearer {ALICE_TOKEN}"}
        me = (await gw.http.get("/api/v1/status", headers=alice)).json()["caller"]
        assert me == {"role": "user", "name": "alice", "via": "user_token"}
        owner = (await gw.http.get("/api/v1/status")).json()["caller"]
        assert owner == {"role": "owner", "name": "owner", "via": "token"}
        reply = await gw.http.post("/api/v1/chat", json={"message": "hi"}, headers=alice)
        assert reply.status_code == 200 and reply.json()["reply"] == "Echo: hi"
        found = await gw.app.storage.find_user("web", "user:alice")
        assert found is not None and found[1] == "user"
        session = await gw.app.storage.get_session(reply.json()["session"])
        assert session is not None and session.user_id == found[0]
        owner_user = await gw.app.storage.find_user("web", "owner")
        assert owner_user is None or owner_user[0] != found[0]
        # Owner-only endpoints refuse web users; wrong tokens get 401.
        metrics = await gw.http.get("/metrics", headers=alice)
        assert metrics.status_code == 403 and error_code(metrics) == "owner_only"
        wrong = await gw.http.get("/api/v1/status", headers={"Authorization": "Bearer nope"})
        assert wrong.status_code == 401
        # Over a WebSocket the first frame identifies the caller (Authenticator.identify_token).
        assert gw.app.web.state.services.auth.identify_token(ALICE_TOKEN).sender_id == "user:alice"


async def test_web_users_without_a_gateway_token(tmp_path: Path) -> None:
    home = tmp_path / "home"
    config = write_config(home, f"web:\n  users:\n    alice: {ALICE_TOKEN}\n")
    async with GatewayHarness(home, config_file=config) as gw:
        loopback = (await gw.http.get("/api/v1/status")).json()["caller"]
        assert loopback == {"role": "owner", "name": "owner", "via": "loopback"}
        alice = {"Authorization": f"Bearer {ALICE_TOKEN}"}
        me = (await gw.http.get("/api/v1/status", headers=alice)).json()["caller"]
        assert me["name"] == "alice" and me["role"] == "user"
        wrong = await gw.http.get("/api/v1/status", headers={"Authorization": "Bearer nope"})
        assert wrong.status_code == 401
