from __future__ import annotations

import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from nexflow.sandbox import Capabilities, CapabilityDenied, GuestError
from nexflow.sandbox.engine import SandboxEngine


@pytest.fixture
def workspace(tmp_path: Path) -> Path:
    root = tmp_path / "ws"
    (root / "notes").mkdir(parents=True)
    (root / "notes" / "todo.md").write_text("- ship it\n")
    (root / "notes" / "big.txt").write_text("x" * 5000)
    (root / "secret.txt").write_text("hunter2")
    (tmp_path / "outside.txt").write_text("outside")
    (root / "notes" / "escape.txt").symlink_to(tmp_path / "outside.txt")
    return root


def caps(root: Path, *paths: str) -> Capabilities:
    return Capabilities(read_root=root, read_paths=frozenset(paths), max_read_bytes=4096)


def test_granted_file_is_readable(sandbox: SandboxEngine, workspace: Path) -> None:
    outcome = sandbox.run_handler(
        "$state.text = $fs.read('notes/todo.md');",
        {},
        {},
        capabilities=caps(workspace, "notes/todo.md"),
    )

    assert outcome.state == {"text": "- ship it\n"}


def test_directory_grant(sandbox: SandboxEngine, workspace: Path) -> None:
    outcome = sandbox.run_handler(
        "$state.text = $fs.read('notes/todo.md');", {}, {}, capabilities=caps(workspace, "notes/")
    )

    assert outcome.state == {"text": "- ship it\n"}


@pytest.mark.parametrize(
    "path",
    ["secret.txt", "/etc/passwd", "../outside.txt", "notes/../secret.txt", "notes/escape.txt", ""],
)
def test_reads_outside_the_grant_are_denied(
    sandbox: SandboxEngine, workspace: Path, path: str
) -> None:
    with pytest.raises(CapabilityDenied):
        sandbox.run_handler(f"$fs.read({path!r});", {}, {}, capabilities=caps(workspace, "notes/"))


def test_no_grant_means_no_files(sandbox: SandboxEngine) -> None:
    with pytest.raises(CapabilityDenied, match="not granted"):
        sandbox.run_handler("$fs.read('notes/todo.md');", {}, {})


def test_catching_a_denial_does_not_hide_it(sandbox: SandboxEngine, workspace: Path) -> None:
    source = "try { $fs.read('secret.txt') } catch (e) { $state.caught = String(e) }"
    with pytest.raises(CapabilityDenied):
        sandbox.run_handler(source, {}, {}, capabilities=caps(workspace, "notes/"))


def test_missing_and_oversized_files_are_js_errors(sandbox: SandboxEngine, workspace: Path) -> None:
    source = """
        try { $fs.read('notes/nope.md') } catch (e) { $state.missing = e.message }
        try { $fs.read('notes/big.txt') } catch (e) { $state.big = e.message }
    """
    outcome = sandbox.run_handler(source, {}, {}, capabilities=caps(workspace, "notes/"))

    assert "no such file" in str(outcome.state["missing"])
    assert "larger than" in str(outcome.state["big"])


def test_uncaught_missing_file_is_a_guest_error(sandbox: SandboxEngine, workspace: Path) -> None:
    with pytest.raises(GuestError, match="no such file"):
        sandbox.run_handler(
            "$fs.read('notes/nope.md');", {}, {}, capabilities=caps(workspace, "notes/")
        )


class _Hello(BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        if self.path == "/redirect":
            self.send_response(302)
            self.send_header("Location", "http://example.invalid/")
            self.end_headers()
            return
        body = b'{"load": 12}'
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:
        pass


@pytest.fixture
def http_base() -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Hello)
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


def test_http_get_to_a_granted_host(sandbox: SandboxEngine, http_base: str) -> None:
    source = (
        f"const r = $http.get('{http_base}/load');"
        "$state.status = r.status; $state.load = JSON.parse(r.text).load;"
    )
    outcome = sandbox.run_handler(
        source, {}, {}, capabilities=Capabilities(http_hosts=frozenset({"127.0.0.1"}))
    )

    assert outcome.state == {"status": 200, "load": 12}


def test_http_redirects_are_not_followed(sandbox: SandboxEngine, http_base: str) -> None:
    source = f"$state.status = $http.get('{http_base}/redirect').status;"
    outcome = sandbox.run_handler(
        source, {}, {}, capabilities=Capabilities(http_hosts=frozenset({"127.0.0.1"}))
    )

    assert outcome.state == {"status": 302}


@pytest.mark.parametrize(
    "url", ["http://localhost/", "file:///etc/passwd", "ftp://127.0.0.1/", "nonsense"]
)
def test_http_to_other_hosts_is_denied(sandbox: SandboxEngine, url: str) -> None:
    with pytest.raises(CapabilityDenied):
        sandbox.run_handler(
            f"$http.get({url!r});",
            {},
            {},
            capabilities=Capabilities(http_hosts=frozenset({"127.0.0.1"})),
        )


def test_host_call_budget(sandbox: SandboxEngine, workspace: Path) -> None:
    source = "for (let i = 0; i < 100; i++) { try { $fs.read('notes/todo.md') } catch (e) {} }"
    with pytest.raises(CapabilityDenied, match="host calls"):
        sandbox.run_handler(source, {}, {}, capabilities=caps(workspace, "notes/"))
