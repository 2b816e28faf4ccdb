"""``nexflow security audit [--json] [--fix]``: how exposed is this installation?

Each check answers ``ok``, ``warn`` or ``fail`` with a message and a fix; the exit code
is 1 when one fails. ``--fix`` repairs what is safe to repair without asking (file
modes; a gateway token when the bind address is not loopback) and says what it changed.
The checks are described in docs/security.md.
"""

from __future__ import annotations

import argparse
import json
import os
import sqlite3
import stat
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from importlib import metadata
from pathlib import Path
from typing import Any, Literal
from urllib.parse import urlsplit

import yaml

from nexflow.config import ConfigError, NexflowConfig, load_config
from nexflow.storage.engine import redact
from nexflow.web.browser import is_loopback_name, parse_origin, split_host

Status = Literal["ok", "warn", "fail"]
TOKEN_MIN_CHARS = 24
RISKY_PERMISSIONS = ("shell", "filesystem", "secrets")
# The wasmtime Python package ships one release line at a time (N.0.x). 50.0.0 is the
# first with every 2026 sandbox-escape fix up to October (Winch / aarch64 Cranelift
# heap access, GHSA-xx5w-cvp6-jv83 and GHSA-jhxm-h53p-jm7w; WASI filesystem escapes
# through trailing slashes, GHSA-vqjp-4c8c-hfgg and GHSA-m9f7-9w4p-gv38; aarch64
# br_table, GHSA-mghf-wjfp-p5xm).
WASMTIME_MIN = (50, 0, 0)


@dataclass(frozen=True, slots=True)
class Finding:
    check: str
    status: Status
    message: str
    fix: str = ""

    def render(self) -> str:
        mark = {"ok": "ok  ", "warn": "warn", "fail": "FAIL"}[self.status]
        lines = [f"[{mark}] {self.check}: {self.message}"]
        if self.fix and self.status != "ok":
            lines.append(f"       fix: {self.fix}")
        return "\n".join(lines)


@dataclass(frozen=True, slots=True)
class Paths:
    """Where the installation keeps its files (known before the configuration loads, so
    that ``--fix`` can repair a secrets file the loader refuses to read)."""

    config: Path | None
    home: Path
    secrets: Path


def locate(config_path: Path | None, env: dict[str, str]) -> Paths:
    raw: dict[str, Any] = {}
    if config_path is not None and config_path.is_file():
        try:
            loaded = yaml.safe_load(config_path.read_text(encoding="utf-8"))
        except (OSError, yaml.YAMLError):
            loaded = None
        raw = loaded if isinstance(loaded, dict) else {}
    home = Path(str(env.get("NEXFLOW_HOME") or raw.get("home") or "~/.nexflow")).expanduser()
    explicit = env.get("NEXFLOW_SECRETS_FILE") or raw.get("secrets_file")
    secrets_file = Path(str(explicit)).expanduser() if explicit else home / "secrets.env"
    return Paths(config_path, home, secrets_file)


# -- checks --------------------------------------------------------------------------


def public_names(config: NexflowConfig) -> list[str]:
    """Non-loopback names the gateway answers to (the bind address and configured hosts)."""
    web = config.web
    names = [split_host(h)[0] for h in web.public_hosts]
    if web.public_url:
        names.append(split_host(urlsplit(web.public_url).netloc.rpartition("@")[2])[0])
    names.append(split_host(web.host)[0])
    return [n for n in names if n and not is_loopback_name(n)]


def check_bind(config: NexflowConfig) -> Finding:
    web = config.web
    public = public_names(config)
    if web.token is None and public:
        return Finding(
            "bind",
            "fail",
            f"reachable as {', '.join(public)} without a gateway token: anyone who reaches "
            "it acts as the owner (nexflow serve refuses a non-loopback bind without one)",
            "nexflow security audit --fix (writes a token into the secrets file), or bind "
            "127.0.0.1 and drop web.public_hosts",
        )
    if web.token is None:
        return Finding(
            "bind",
            "ok",
            f"loopback only ({web.host}:{web.port}), no token: the browser guard stops other "
            "sites; local programs act as the owner",
        )
    return Finding("bind", "ok", f"{web.host}:{web.port}, gateway token required")


def check_tokens(config: NexflowConfig) -> Finding:
    weak = []
    if config.web.token is not None and len(config.web.token.get_secret_value()) < TOKEN_MIN_CHARS:
        weak.append("web.token")
    weak += [
        f"web.users.{name}"
        for name, token in config.web.users.items()
        if len(token.get_secret_value()) < TOKEN_MIN_CHARS
    ]
    if weak:
        return Finding(
            "tokens",
            "warn",
            f"shorter than {TOKEN_MIN_CHARS} characters: {', '.join(weak)}",
            "generate one with: python -c 'import secrets; print(secrets.token_urlsafe(32))'",
        )
    if config.web.token is None and not config.web.users:
        return Finding("tokens", "ok", "no tokens configured")
    return Finding("tokens", "ok", f"tokens are at least {TOKEN_MIN_CHARS} characters")


def check_browser(config: NexflowConfig) -> Finding:
    web = config.web
    problems = [f"web.public_hosts {h!r} is a wildcard" for h in web.public_hosts if "*" in h]
    for entry in web.allowed_origins:
        parsed = parse_origin(entry.replace("*.", "wildcard."))
        if "*" in entry:
            problems.append(f"web.allowed_origins {entry!r} is a wildcard")
        elif parsed and parsed[0] == "http" and not is_loopback_name(parsed[1]):
            problems.append(f"web.allowed_origins {entry!r} is plain http (a network can inject)")
    if problems:
        return Finding(
            "browser",
            "warn",
            "; ".join(problems),
            "name exact hosts and https origins (docs/security.md)",
        )
    extra = len(web.public_hosts) + len(web.allowed_origins)
    return Finding(
        "browser",
        "ok",
        "Host and Origin checks on"
        + (f" ({extra} configured host/origin entries)" if extra else " (loopback and own origin)"),
    )


def file_mode(path: Path) -> int | None:
    try:
        return stat.S_IMODE(path.stat().st_mode)
    except OSError:
        return None


def check_files(paths: Paths, database: Path | None) -> list[Finding]:
    """Nothing of the installation is writable by others; secrets are readable by no one
    else (a secrets file that is fails: the gateway refuses to read it)."""
    found: list[Finding] = []
    for name, path, private, readable in (
        ("home", paths.home, 0o700, "warn"),
        ("secrets file", paths.secrets, 0o600, "fail"),
        ("config file", paths.config, 0o600, "warn"),
        ("database", database, 0o600, "warn"),
    ):
        mode = file_mode(path) if path is not None else None
        if path is None or mode is None:
            if name == "home":
                found.append(Finding(name, "ok", f"{paths.home} does not exist yet"))
            continue
        fix = f"chmod {private:o} {path} (or nexflow security audit --fix)"
        if mode & 0o022:
            found.append(Finding(name, "fail", f"{path} is writable by others ({mode:o})", fix))
        elif mode & 0o077:
            status: Status = "fail" if readable == "fail" else "warn"
            found.append(Finding(name, status, f"{path} is readable by others ({mode:o})", fix))
        else:
            found.append(Finding(name, "ok", f"{path} is private"))
    return found


def check_permissions(config: NexflowConfig) -> Finding:
    risky = {
        role: [p for p in granted if p in RISKY_PERMISSIONS]
        for role, granted in config.permissions.roles.items()
        if role != "owner"
    }
    risky = {role: perms for role, perms in risky.items() if perms}
    if risky:
        listed = "; ".join(f"{role}: {', '.join(perms)}" for role, perms in risky.items())
        return Finding(
            "skill permissions",
            "warn",
            f"roles other than owner may let skills use {listed}",
            "grant shell/filesystem/secrets per user (permissions.users) instead of per role",
        )
    return Finding("skill permissions", "ok", "only the owner role has shell/filesystem/secrets")


def check_isolation(config: NexflowConfig) -> Finding:
    from nexflow.skills.isolation import IsolationLevel, detect

    fix = "apt-get install bubblewrap (or allow user namespaces), skills.isolation: auto"
    if config.skills.isolation == "none":
        return Finding(
            "skill isolation", "fail", "skills.isolation is none: skills run unconfined", fix
        )
    prefer = None if config.skills.isolation == "auto" else IsolationLevel(config.skills.isolation)
    with tempfile.TemporaryDirectory(prefix="nexflow-audit-") as scratch:
        level, notes = detect(Path(scratch), prefer)
    if level is IsolationLevel.NONE:
        why = "; ".join(notes) or "no isolation available"
        return Finding("skill isolation", "fail", f"skills would run unconfined ({why})", fix)
    return Finding("skill isolation", "ok", f"skills run under {level.value}")


def check_wasmtime() -> Finding:
    try:
        version = metadata.version("wasmtime")
    except metadata.PackageNotFoundError:
        return Finding(
            "wasmtime",
            "warn",
            "not installed: panels (their Wasm sandbox) are unavailable",
            "pip install 'wasmtime>=50'",
        )
    parts = tuple(int(p) if p.isdigit() else 0 for p in version.split(".")[:3])
    wanted = ".".join(map(str, WASMTIME_MIN))
    if parts < WASMTIME_MIN:
        return Finding(
            "wasmtime",
            "fail",
            f"{version} predates the 2026 sandbox-escape fixes (need {wanted} or newer)",
            f"pip install -U 'wasmtime>={wanted}'",
        )
    return Finding("wasmtime", "ok", f"{version} (>= {wanted})")


def check_mcp(config: NexflowConfig) -> Finding:
    if not config.panels.mcp:
        return Finding("mcp", "ok", "the /mcp endpoint is off")
    if config.web.token is None and public_names(config):
        return Finding(
            "mcp",
            "fail",
            "/mcp is reachable from the network without a token: any client runs skills "
            "as the owner",
            "set NEXFLOW_GATEWAY_TOKEN (nexflow security audit --fix), or panels.mcp: false",
        )
    how = "with the gateway token" if config.web.token else "from loopback"
    return Finding("mcp", "ok", f"/mcp answers {how} only")


def check_queues(database: Path | str) -> list[Finding]:
    """Dead letters and waiting approvals, in the SQLite file or the Postgres database
    (``storage.url``), read without writing."""
    counts = _queue_counts(database)
    if isinstance(counts, Finding):
        return [counts]
    dead, pending, stale = counts
    found: list[Finding] = []
    letters = {t: n for t, n in dead.items() if n}
    if letters:
        what = ", ".join(f"{n} in {t}" for t, n in letters.items())
        found.append(
            Finding(
                "dead letters",
                "warn",
                f"{what}: messages that failed for good (never replayed silently)",
                "look at them (status 'dead' in the database) and retry or drop them",
            )
        )
    else:
        found.append(Finding("dead letters", "ok", "none"))
    if pending is None:
        found.append(Finding("approvals", "ok", "no approvals table"))
    elif pending:
        expired = f", {stale} past their expiry" if stale else ""
        found.append(
            Finding(
                "approvals",
                "warn",
                f"{pending} waiting for an answer{expired}",
                "answer them in the chat (the confirmation card) or let them expire",
            )
        )
    else:
        found.append(Finding("approvals", "ok", "none pending"))
    return found


_Counts = tuple[dict[str, int | None], int | None, int | None]


def _queue_counts(database: Path | str) -> _Counts | Finding:
    def counts(count: Callable[[str, str], int | None]) -> _Counts:
        dead = {t: count(t, "status='dead'") for t in ("inbox", "outbox")}
        pending = count("approvals", "status='pending'")
        stale = count("approvals", f"status='pending' AND expires_at < {time.time()}")
        return dead, pending, stale

    if isinstance(database, str):  # a Postgres storage.url
        import psycopg

        try:
            with psycopg.connect(database, connect_timeout=5, autocommit=True) as pg:
                return counts(lambda t, w: _pg_count(pg, t, w))
        except psycopg.Error as exc:
            return Finding("dead letters", "warn", f"cannot read {redact(database)}: {exc}")
    if not database.is_file():
        return Finding("dead letters", "ok", "no database yet")
    try:
        with sqlite3.connect(f"file:{database}?mode=ro", uri=True, timeout=2) as conn:
            return counts(lambda t, w: _count(conn, t, w))
    except sqlite3.Error as exc:
        return Finding("dead letters", "warn", f"cannot read {database}: {exc}")


def _count(conn: sqlite3.Connection, table: str, where: str) -> int | None:
    """Rows matching ``where``; None when the table or a column is missing (older schema)."""
    try:
        row = conn.execute(f"SELECT COUNT(*) AS n FROM {table} WHERE {where}").fetchone()
    except sqlite3.OperationalError:
        return None
    return int(row[0])


def _pg_count(conn: Any, table: str, where: str) -> int | None:
    import psycopg

    try:
        row = conn.execute(f"SELECT COUNT(*) AS n FROM {table} WHERE {where}").fetchone()
    except (psycopg.errors.UndefinedTable, psycopg.errors.UndefinedColumn):
        return None
    return int(row[0])


def audit(config: NexflowConfig, paths: Paths) -> list[Finding]:
    findings = [check_bind(config), check_tokens(config), check_browser(config), check_mcp(config)]
    findings += check_files(paths, None if config.uses_postgres else config.database_path)
    findings += [check_permissions(config), check_isolation(config), check_wasmtime()]
    findings += check_queues(config.storage_url if config.uses_postgres else config.database_path)
    return findings


# -- command -------------------------------------------------------------------------


def main_security(argv: list[str]) -> int:
    from nexflow.cli import _config_path
    from nexflow.security_fix import fix_modes, fix_token

    parser = argparse.ArgumentParser(prog="nexflow security", description="security checks")
    sub = parser.add_subparsers(dest="action", required=True)
    cmd = sub.add_parser("audit", help="check exposure, tokens, file modes, sandboxes")
    cmd.add_argument("--config", help="config file (default $NEXFLOW_CONFIG, ./config.yml)")
    cmd.add_argument("--json", action="store_true", help="print the findings as a JSON list")
    cmd.add_argument("--fix", action="store_true", help="repair file modes; add a missing token")
    args = parser.parse_args(argv)
    config_path = _config_path(args.config)
    paths = locate(config_path, dict(os.environ))
    changes: list[str] = []
    if args.fix:
        changes += fix_modes(paths, None)
    try:
        config = load_config(config_path)
    except ConfigError as exc:
        return _report(
            [Finding("configuration", "fail", exc.render(), "fix the configuration first")],
            changes,
            args.json,
        )
    if args.fix:
        changes += fix_modes(paths, config.database_path)
        token_change = fix_token(config, paths)
        if token_change:
            changes += token_change
            config = load_config(config_path)
    return _report(audit(config, paths), changes, args.json)


def _report(findings: list[Finding], changes: list[str], as_json: bool) -> int:
    out = sys.stderr if as_json else sys.stdout
    for change in changes:
        print(f"fixed: {change}", file=out)
    if as_json:
        print(json.dumps([asdict(f) for f in findings], indent=2))
    else:
        if changes:
            print()
        for finding in findings:
            print(finding.render())
        failed = sum(f.status == "fail" for f in findings)
        warned = sum(f.status == "warn" for f in findings)
        print(f"\n{failed} failed, {warned} warnings, {len(findings)} checks.")
    return 1 if any(f.status == "fail" for f in findings) else 0
