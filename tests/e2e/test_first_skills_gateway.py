"""The first bundled skills (file-read, file-write, git-basic, http-request) through the
real gateway: the scripted model calls run_skill, the skill runs sandboxed, the model
gets its framed output."""

import asyncio
import json
import subprocess
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from nexflow.testing.fake_llm import Reply
from nexflow.testing.harness import GatewayHarness


class Hello(BaseHTTPRequestHandler):
    def log_message(self, format: str, *args: object) -> None:
        pass

    def do_GET(self) -> None:
        body = json.dumps({"status": "green", "path": self.path}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


@pytest.fixture
def site() -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), Hello)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


async def run(gw: GatewayHarness, name: str, payload: dict[str, Any]) -> tuple[str, str]:
    """(the reply, the tool message the model got) for one run_skill call."""
    gw.llm.push(Reply(tool_calls=(("run_skill", {"name": name, "input": payload}),)))
    reply = await gw.chat(f"use {name}")
    tool = next(m for m in reversed(gw.llm.requests[-1]["messages"]) if m["role"] == "tool")
    return str(reply["reply"]), str(tool["content"])


async def test_file_skills_and_git(gateway: GatewayHarness) -> None:
    workspace = gateway.home / "workspace"
    (workspace / "notes.txt").write_text("alpha\nbeta\n")
    await asyncio.to_thread(subprocess.run, ["git", "init", "-q", str(workspace)], check=True)
    _, read = await run(gateway, "file-read", {"path": "notes.txt"})
    assert "alpha" in read and 'trust="trusted"' in read  # inside the workspace: trusted
    _, wrote = await run(gateway, "file-write", {"path": "out/plan.md", "content": "# Plan\n"})
    assert (workspace / "out" / "plan.md").read_text() == "# Plan\n", wrote
    _, status = await run(gateway, "git-basic", {"action": "status"})
    assert "notes.txt" in status and "out/" in status, status


async def test_http_request_to_an_allowed_host(
    tmp_path: Path, site: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    config = tmp_path / "config.yml"
    config.write_text("skills:\n  secrets:\n    http-request: [NEXFLOW_HTTP_ALLOW]\n")
    monkeypatch.setenv("NEXFLOW_HTTP_ALLOW", "127.0.0.1")  # the admin's allowlist
    async with GatewayHarness(tmp_path / "home", config_file=config) as gw:
        _, fetched = await run(gw, "http-request", {"url": f"{site}/ci/status"})
        assert '\\"status\\": \\"green\\"' in fetched or '"green"' in fetched, fetched
        assert 'trust="untrusted"' in fetched  # a web answer is someone else's text
        _, refused = await run(gw, "http-request", {"url": "http://169.254.169.254/"})
        assert "refused" in refused and "allowlist" in refused
