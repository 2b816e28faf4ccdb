"""``nexflow security audit --fix``: repairs that are safe without asking.

File modes (700 for the home, 600 for the secrets file, the config file and the database)
and, when the gateway is reachable beyond loopback without one, a new gateway token in
the secrets file. Each returns what it changed, in words.
"""

from __future__ import annotations

import os
import secrets
from pathlib import Path

from nexflow.config import NexflowConfig
from nexflow.security_audit import Paths, file_mode, public_names

TOKEN_KEY = "NEXFLOW_GATEWAY_TOKEN"


def fix_modes(paths: Paths, database: Path | None) -> list[str]:
    """chmod 700 the home, 600 the secrets file, the config file and the database."""
    changed: list[str] = []
    targets: list[tuple[Path | None, int]] = [(paths.home, 0o700), (paths.secrets, 0o600)]
    targets += [(paths.config, 0o600)]
    if database is not None:
        targets += [
            (database, 0o600),
            *((database.with_name(database.name + s), 0o600) for s in ("-wal", "-shm")),
        ]
    for path, wanted in targets:
        mode = file_mode(path) if path is not None else None
        if path is None or mode is None or mode & 0o077 == 0:
            continue
        try:
            path.chmod(wanted)
        except OSError as exc:
            changed.append(f"could not chmod {wanted:o} {path}: {exc.strerror}")
            continue
        changed.append(f"chmod {wanted:o} {path} (was {mode:o})")
    return changed


def fix_token(config: NexflowConfig, paths: Paths) -> list[str]:
    """Write a new gateway token into the secrets file when the gateway is reachable
    beyond loopback without one."""
    if config.web.token is not None or not public_names(config):
        return []
    target = config.secrets_file or paths.secrets
    token = secrets.token_urlsafe(32)
    lines: list[str] = []
    if target.is_file():
        text = target.read_text(encoding="utf-8")
        lines = [
            line
            for line in text.splitlines()
            if line.strip().removeprefix("export ").partition("=")[0].strip() != TOKEN_KEY
        ]
    target.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    fd = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as out:
        out.write("\n".join([*lines, f"{TOKEN_KEY}={token}"]) + "\n")
    target.chmod(0o600)
    return [
        f"wrote a new gateway token to {target} as {TOKEN_KEY} (read it with: "
        f"grep {TOKEN_KEY} {target}); restart the gateway, then send "
        "'Authorization: Bearer <token>' (the chat page asks for it once)"
    ]
