"""End to end through the real HTTP API, the real litellm client and the fake LLM server."""

import asyncio
import json
from pathlib import Path

import httpx
import websockets

from nexflow.testing.fake_llm import Reply, callable_tools
from nexflow.testing.harness import GatewayHarness


async def test_message_tool_call_reply(gateway: GatewayHarness) -> None:
    # What the README's curl sends (a form-encoded body is refused: 415, tests/web).
    resp = await gateway.http.post(
        "/api/v1/chat",
        content=b'{"message":"what time is it?"}',
        headers={"Content-Type": "application/json"},
    )
    assert resp.status_code == 200, resp.text
    data = resp.json()
    assert [c["name"] for c in data["tool_calls"]] == ["get_time"]
    assert data["tool_calls"][0]["ok"] is True
    assert data["reply"].startswith("The tool get_time returned: ")
    assert "llm;dur=" in resp.headers["server-timing"]
    # The model saw the tool, then its result.
    first, second = gateway.llm.requests
    # get_time is deferred: named in load_tools, callable, its schema not sent.
    assert "get_time" in callable_tools(first)
    assert "get_time" not in {t["function"]["name"] for t in first["tools"]}
    assert second["messages"][-1]["role"] == "tool"
    # Everything is in the session history and the audit log.
    session = (await gateway.http.get(f"/api/v1/sessions/{data['session']}")).json()
    assert [m["role"] for m in session["messages"]] == ["user", "assistant", "tool", "assistant"]
    assert all({"role", "content", "created_at"} <= m.keys() for m in session["messages"])
    assert gateway.app is not None
    audit = await gateway.app.storage.audit_tail(20)
    kinds = sorted(a["kind"] for a in audit)
    assert kinds == ["llm_call", "llm_call", "message_in", "tool_call"]
    llm = next(a for a in audit if a["kind"] == "llm_call")
    assert {"tokens_in", "tokens_out", "cost_usd", "latency_s"} <= llm["data"].keys()


async def test_follow_up_continues_the_session(gateway: GatewayHarness) -> None:
    first = await gateway.chat("my name is Ada")
    second = await gateway.chat("what is my name?", session=first["session"])
    assert second["session"] == first["session"]
    sent = gateway.llm.requests[-1]["messages"]
    assert [m["content"] for m in sent if m["role"] == "user"] == [
        "my name is Ada",
        "what is my name?",
    ]
    assert sent[0]["role"] == "system"
    listed = (await gateway.http.get("/api/v1/sessions")).json()
    assert [s["id"] for s in listed] == [first["session"]]


async def test_bad_input_gets_clear_errors(gateway: GatewayHarness) -> None:
    http = gateway.http
    bad_json = await http.post(
        "/api/v1/chat",
        content=b'{"message": "unterminated',
        headers={"Content-Type": "application/json"},
    )
    assert bad_json.status_code == 422
    assert "not valid JSON" in bad_json.json()["error"]["message"]
    missing = await http.post("/api/v1/chat", json={"text": "hi"})
    assert missing.status_code == 422 and "message" in missing.json()["error"]["message"]
    empty = await http.post("/api/v1/chat", json={"message": "   "})
    assert empty.status_code == 422 and empty.json()["error"]["code"] == "invalid_message"
    too_long = await http.post("/api/v1/chat", json={"message": "x" * 16_001})
    assert too_long.status_code == 422 and "16000" in too_long.json()["error"]["message"]
    huge = await http.post("/api/v1/chat", content=b"x" * 2_000_000)
    assert huge.status_code == 413
    unknown = await http.post("/api/v1/chat", json={"message": "hi", "session": "nope"})
    assert unknown.status_code == 404 and unknown.json()["error"]["code"] == "unknown_session"
    assert (await http.get("/api/v1/sessions/nope")).status_code == 404
    assert (await http.get("/api/v1/nothing-here")).json()["error"]["code"] == "not_found"
    # Nothing was accepted, nothing reached the model.
    assert gateway.llm.requests == []


async def test_idempotency_key_gives_one_reply(gateway: GatewayHarness) -> None:
    headers = {"Idempotency-Key": "abc-1"}
    a = await gateway.http.post("/api/v1/chat", json={"message": "once"}, headers=headers)
    b = await gateway.http.post("/api/v1/chat", json={"message": "once"}, headers=headers)
    assert a.json()["message_id"] == b.json()["message_id"]
    assert a.json()["reply"] == b.json()["reply"] == "Echo: once"
    assert len(gateway.llm.requests) == 1


async def test_provider_down_is_explained_and_nothing_lost(gateway: GatewayHarness) -> None:
    gateway.llm.push(Reply(status=500), Reply(status=500), Reply(status=500))
    data = await gateway.chat("are you there?")
    assert data["error"] == "provider_unavailable"
    assert "not answering" in data["reply"] and "saved" in data["reply"]
    session = (await gateway.http.get(f"/api/v1/sessions/{data['session']}")).json()
    assert session["messages"][0]["content"] == "are you there?"
    assert len(gateway.llm.requests) == 3  # retried before giving up
    metrics = (await gateway.http.get("/metrics")).text
    assert 'nexflow_llm_calls_total{model="openai/fake-model",outcome="error"} 1.0' in metrics


async def test_no_model_configured_tells_the_user_how(tmp_path: Path) -> None:
    async with GatewayHarness(tmp_path, with_llm=False) as gw:
        status = (await gw.http.get("/api/v1/status")).json()
        assert status["model"]["configured"] is False
        assert "NEXFLOW_LLM_MODEL" in status["model"]["help"]
        data = await gw.chat("hi")
        assert data["error"] == "no_model"
        assert "NEXFLOW_LLM_MODEL" in data["reply"] and "ollama" in data["reply"].lower()


async def test_health_ready_metrics(gateway: GatewayHarness) -> None:
    assert (await gateway.http.get("/health")).json()["status"] == "ok"
    assert (await gateway.http.get("/ready")).status_code == 200
    await gateway.chat("count me")
    delivered = 'nexflow_messages_out_total{channel="web"} 1.0'
    for _ in range(100):  # the outbox delivers just after the reply is committed
        text = (await gateway.http.get("/api/v1/metrics")).text
        if delivered in text:
            break
        await asyncio.sleep(0.02)
    assert delivered in text
    assert 'nexflow_messages_in_total{channel="web"} 1.0' in text
    assert "nexflow_llm_latency_seconds_bucket" in text


async def test_websocket_streams_tokens_and_reply(gateway: GatewayHarness) -> None:
    async with websockets.connect(gateway.url.replace("http", "ws") + "/ws/chat/new") as ws:
        await ws.send(json.dumps({"type": "message", "message": "stream this please"}))
        events = []
        async with asyncio.timeout(20):
            while True:
                event = json.loads(await ws.recv())
                events.append(event)
                if event["type"] == "reply":
                    break
    kinds = [e["type"] for e in events]
    assert kinds[0] == "session" and "accepted" in kinds
    tokens = "".join(e["text"] for e in events if e["type"] == "token")
    assert tokens == "Echo: stream this please" == events[-1]["text"]
    assert gateway.llm.requests[-1]["stream"] is True


async def test_websocket_unknown_session_and_bad_frame(gateway: GatewayHarness) -> None:
    url = gateway.url.replace("http", "ws")
    async with websockets.connect(url + "/ws/chat/missing") as ws:
        assert json.loads(await ws.recv())["code"] == "unknown_session"
        with __import__("pytest").raises(websockets.ConnectionClosed) as info:
            await ws.recv()
        assert info.value.rcvd is not None and info.value.rcvd.code == 4404
    async with websockets.connect(url + "/ws/chat/new") as ws:
        await ws.send("not json")
        assert json.loads(await ws.recv())["code"] == "invalid_frame"


async def test_logs_websocket_streams_json_lines(gateway: GatewayHarness) -> None:
    async with websockets.connect(gateway.url.replace("http", "ws") + "/ws/logs") as ws:
        await asyncio.sleep(0.05)
        gateway.logs.publish(json.dumps({"event": "probe"}))
        line = json.loads(await asyncio.wait_for(ws.recv(), 5))
        assert line["event"] == "probe"


async def test_openapi_is_served(gateway: GatewayHarness) -> None:
    schema = (await gateway.http.get("/openapi.json")).json()
    assert "/api/v1/chat" in schema["paths"]
    assert isinstance(gateway.http, httpx.AsyncClient)


async def test_builtin_openai_compatible_client_end_to_end(tmp_path: Path) -> None:
    async with GatewayHarness(tmp_path, client="openai") as gw:
        data = await gw.chat("what time is it?")
        assert [c["name"] for c in data["tool_calls"]] == ["get_time"]
        assert data["reply"].startswith("The tool get_time returned: ")
        async with websockets.connect(gw.url.replace("http", "ws") + "/ws/chat/new") as ws:
            await ws.send(json.dumps({"type": "message", "message": "stream me"}))
            tokens = []
            async with asyncio.timeout(20):
                while (event := json.loads(await ws.recv()))["type"] != "reply":
                    if event["type"] == "token":
                        tokens.append(event["text"])
        assert "".join(tokens) == event["text"] == "Echo: stream me"
        metrics = (await gw.http.get("/metrics")).text
        assert 'nexflow_llm_calls_total{model="openai/fake-model",outcome="ok"} 3.0' in metrics
