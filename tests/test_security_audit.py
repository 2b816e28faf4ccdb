"""``nexflow security audit``: findings, --json, exit codes and --fix on a temporary home."""

import json
import sqlite3
import stat
from pathlib import Path
from typing import Any

import pytest

from nexflow.cli import main

SAFE = "web:\n  host: 127.0.0.1\nskills:\n  isolation: auto\n"
EXPOSED = (
    "web:\n"
    "  host: 0.0.0.0\n"
    "  allowed_origins: ['http://app.example', 'https://*.example.com']\n"
    "permissions:\n"
    "  roles: {owner: [shell, filesystem, network, secrets], user: [shell, network]}\n"
    "skills:\n"
    "  isolation: none\n"
)


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    for name in (
        "NEXFLOW_CONFIG",
        "NEXFLOW_GATEWAY_TOKEN",
        "NEXFLOW_SECRETS_FILE",
        "NEXFLOW_LLM_MODEL",
        "NEXFLOW_WEB__TOKEN",
        "NEXFLOW_WEB__HOST",
    ):
        monkeypatch.delenv(name, raising=False)
    path = tmp_path / "home"
    path.mkdir(mode=0o700)
    path.chmod(0o700)
    monkeypatch.setenv("NEXFLOW_HOME", str(path))
    monkeypatch.chdir(tmp_path)
    return path


def audit(
    capsys: pytest.CaptureFixture[str], config: Path, *extra: str
) -> tuple[int, dict[str, dict[str, Any]], str]:
    code = main(["security", "audit", "--json", "--config", str(config), *extra])
    out = capsys.readouterr()
    findings = json.loads(out.out)
    assert isinstance(findings, list)
    for finding in findings:
        assert set(finding) == {"check", "status", "message", "fix"}
        assert finding["status"] in ("ok", "warn", "fail")
    return code, {f["check"]: f for f in findings}, out.err


def write(path: Path, text: str, mode: int = 0o600) -> Path:
    path.write_text(text)
    path.chmod(mode)
    return path


def test_a_loopback_install_passes(home: Path, capsys: pytest.CaptureFixture[str]) -> None:
    config = write(home / "config.yml", SAFE)
    code, found, _ = audit(capsys, config)
    for check in ("bind", "tokens", "browser", "mcp", "home", "config file", "wasmtime"):
        assert found[check]["status"] == "ok", found[check]
    assert found["skill permissions"]["status"] == "ok"
    assert found["dead letters"]["message"] == "no database yet"
    assert code == (1 if any(f["status"] == "fail" for f in found.values()) else 0)
    # The text form says the same, one line per check.
    assert main(["security", "audit", "--config", str(config)]) == code
    text = capsys.readouterr().out
    assert "[ok  ] bind: loopback only" in text and "checks." in text


def test_an_exposed_install_fails(home: Path, capsys: pytest.CaptureFixture[str]) -> None:
    config = write(home / "config.yml", EXPOSED, 0o644)
    home.chmod(0o755)
    code, found, _ = audit(capsys, config)
    assert code == 1
    assert found["bind"]["status"] == "fail" and "0.0.0.0" in found["bind"]["message"]
    assert found["mcp"]["status"] == "fail"
    assert found["skill isolation"]["status"] == "fail"
    assert found["skill permissions"]["status"] == "warn"
    assert "user: shell" in found["skill permissions"]["message"]
    browser = found["browser"]
    assert browser["status"] == "warn" and "plain http" in browser["message"]
    assert "wildcard" in browser["message"]
    assert found["home"]["status"] == "warn" and "chmod 700" in found["home"]["fix"]
    assert found["config file"]["status"] == "warn"


def test_weak_token_and_queues(home: Path, capsys: pytest.CaptureFixture[str]) -> None:
    config = write(home / "config.yml", SAFE)
    write(home / "secrets.env", "NEXFLOW_GATEWAY_TOKEN=short-but-16chars\n")
    with sqlite3.connect(home / "nexflow.db") as db:
        db.execute("CREATE TABLE inbox (id INTEGER PRIMARY KEY, status TEXT)")
        db.executemany("INSERT INTO inbox (status) VALUES (?)", [("dead",), ("done",)])
        db.execute("CREATE TABLE outbox (id INTEGER PRIMARY KEY)")  # no status column: skipped
        db.execute("CREATE TABLE approvals (id TEXT, status TEXT, expires_at REAL)")
        db.execute("INSERT INTO approvals VALUES ('a1', 'pending', 0)")
    (home / "nexflow.db").chmod(0o600)
    _, found, _ = audit(capsys, config)
    assert found["tokens"]["status"] == "warn" and "web.token" in found["tokens"]["message"]
    assert found["dead letters"]["status"] == "warn"
    assert "1 in inbox" in found["dead letters"]["message"]
    assert found["approvals"]["status"] == "warn"
    assert "1 waiting" in found["approvals"]["message"]
    assert found["database"]["status"] == "ok"


def test_queues_on_postgres(home: Path, capsys: pytest.CaptureFixture[str], pg_url: str) -> None:
    """With storage.url on Postgres the audit reads the queues there (and no file)."""
    import psycopg

    config = write(home / "config.yml", SAFE + f"storage:\n  url: '{pg_url}'\n")
    write(home / "secrets.env", "NEXFLOW_GATEWAY_TOKEN=" + "x" * 40 + "\n")
    with psycopg.connect(pg_url, autocommit=True) as db:
        db.execute("CREATE TABLE inbox (id BIGINT PRIMARY KEY, status TEXT)")
        db.execute("INSERT INTO inbox VALUES (1, 'dead'), (2, 'dead'), (3, 'done')")
        db.execute("CREATE TABLE outbox (id BIGINT PRIMARY KEY)")  # no status column: skipped
    _, found, _ = audit(capsys, config)
    assert found["dead letters"]["status"] == "warn"
    assert "2 in inbox" in found["dead letters"]["message"]
    assert found["approvals"]["message"] == "no approvals table"
    assert "database" not in found  # no file to check


def test_fix_repairs_modes_and_adds_a_token(home: Path, capsys: pytest.CaptureFixture[str]) -> None:
    config = write(home / "config.yml", "web:\n  host: 0.0.0.0\n", 0o644)
    secrets = write(home / "secrets.env", "OTHER_KEY=keep-me\n", 0o644)
    home.chmod(0o755)
    # A readable secrets file stops the configuration from loading at all.
    code, found, _ = audit(capsys, config)
    assert code == 1 and found["configuration"]["status"] == "fail"
    assert "chmod 600" in found["configuration"]["message"]

    main(["security", "audit", "--fix", "--config", str(config)])
    out = capsys.readouterr().out
    assert f"chmod 700 {home}" in out
    assert f"chmod 600 {secrets}" in out and f"chmod 600 {config}" in out
    assert f"wrote a new gateway token to {secrets}" in out
    assert stat.S_IMODE(home.stat().st_mode) == 0o700
    assert stat.S_IMODE(secrets.stat().st_mode) == 0o600
    assert stat.S_IMODE(config.stat().st_mode) == 0o600
    lines = secrets.read_text().splitlines()
    assert lines[0] == "OTHER_KEY=keep-me"
    key, _, token = lines[1].partition("=")
    assert key == "NEXFLOW_GATEWAY_TOKEN" and len(token) >= 40
    assert token not in out  # said where, never the secret itself
    # After the fix the audit passes the bind and MCP checks; a second --fix changes nothing.
    code, found, err = audit(capsys, config, "--fix")
    assert found["bind"]["status"] == "ok" and found["mcp"]["status"] == "ok"
    assert found["tokens"]["status"] == "ok" and err == ""
    assert secrets.read_text().splitlines()[1] == f"NEXFLOW_GATEWAY_TOKEN={token}"
