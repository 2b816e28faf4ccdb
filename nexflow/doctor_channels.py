"""``nexflow doctor``: the chat connectors and the git workspaces.

Channels: each section under ``connectors:`` is validated as the gateway would validate
it, and its SDK must be importable; a channel with a live check (:data:`_LIVE`: the
email connector logs in to its mailbox and greets its SMTP server) runs it too.
Workspaces: git is on the path and new enough, and no repository is wedged (a lock file
older than ``workspaces.git_timeout_s`` refuses every later move of ``main``) or has
grown past its packing limit. Nothing here starts a git process per repository: loose
objects and locks are counted from the files.
"""

from __future__ import annotations

import importlib
import importlib.util
import re
import shutil
import subprocess
import time
from pathlib import Path

from nexflow.config import ConfigError, NexflowConfig
from nexflow.doctor import Check

# section name → (module with the config model, its class, the SDK module, pip extra, the
# key that holds its credential, checked first for a clearer message)
_CHANNELS: dict[str, tuple[str, str, str, str, str | None]] = {
    "telegram": (
        "connectors.telegram.config",
        "TelegramConfig",
        "aiogram",
        "telegram",
        "bot_token",
    ),
    "discord": ("connectors.discord.config", "DiscordConfig", "discord", "discord", "bot_token"),
    "webhook": ("connectors.webhook.config", "WebhookConfig", "aiohttp", "all", None),
    "email": ("connectors.email.config", "EmailConfig", "imaplib", "all", None),
}
# section name → the module whose ``checks(settings)`` connects to the service
_LIVE: dict[str, str] = {"email": "connectors.email.probe"}
_GIT_MIN = (2, 28)  # init --initial-branch
_STALE = ("*.lock", "packed-refs.new", "gc.pid")


def channels(config: NexflowConfig) -> list[Check]:
    checks = [Check(True, "channel web", "always on")]
    for name, raw in config.connectors.items():
        title = f"channel {name}"
        section = dict(raw)
        if section.pop("enabled", True) is False:
            checks.append(Check(True, title, "disabled"))
            continue
        if name not in _CHANNELS:
            known = ", ".join(sorted(_CHANNELS))
            checks.append(Check(False, title, "unknown connector", f"use one of: {known}"))
            continue
        module, cls, sdk, extra, credential = _CHANNELS[name]
        if credential is not None and not section.get(credential):
            fix = f'set connectors.{name}.{credential} (e.g. "${{{name.upper()}_BOT_TOKEN}}")'
            checks.append(Check(False, title, f"no {credential}", fix))
            continue
        try:
            settings = getattr(importlib.import_module(module), cls).from_section(section)
        except ConfigError as exc:
            checks.append(Check(False, title, exc.render(), "edit the section"))
            continue
        if importlib.util.find_spec(sdk) is None:
            fix = f"pip install 'nexflow[{extra}]' (make run installs every extra)"
            checks.append(Check(False, title, f"{sdk} is not installed", fix))
            continue
        checks.append(Check(True, title, f"configured ({sdk})"))
        if name in _LIVE:
            checks += importlib.import_module(_LIVE[name]).checks(settings)
    return checks


def git_version(git: str) -> tuple[int, ...] | None:
    try:
        out = subprocess.run(
            [git, "--version"], check=False, capture_output=True, text=True, timeout=10
        )
    except (OSError, subprocess.TimeoutExpired):
        return None
    found = re.search(r"(\d+)\.(\d+)", out.stdout)
    return tuple(int(n) for n in found.groups()) if found else None


def workspaces(config: NexflowConfig, now: float | None = None) -> list[Check]:
    git = shutil.which("git")
    if git is None:
        return [Check(False, "git", "not found", "apt-get install git", warning=True)]
    version = git_version(git)
    shown = ".".join(map(str, version)) if version else "unknown version"
    if version is None or version < _GIT_MIN:
        fix = "install git 2.28 or newer (workspaces need init --initial-branch)"
        return [Check(False, "git", f"{git}, {shown}", fix, warning=True)]
    checks = [Check(True, "git", f"{git}, {shown}")]
    settings = config.workspaces
    root = settings.root.expanduser() if settings.root else config.home / "workspaces"
    repos = sorted(p.parent for p in root.glob("*/*/.git")) if root.is_dir() else []
    if not repos:
        checks.append(Check(True, "workspaces", f"none yet under {root}"))
        return checks
    now = time.time() if now is None else now
    stale = [
        lock
        for repo in repos
        for pattern in _STALE
        for lock in (repo / ".git").rglob(pattern)
        if now - lock.stat().st_mtime > settings.git_timeout_s
    ]
    loose = {repo: _loose_objects(repo / ".git") for repo in repos}
    biggest = max(loose, key=lambda r: loose[r])
    detail = f"{len(repos)} under {root}; most loose objects: {loose[biggest]} ({biggest.name})"
    if stale:
        names = ", ".join(str(p) for p in stale[:3]) + (" …" if len(stale) > 3 else "")
        fix = "stop the gateway, make sure no git runs there, then delete the file(s)"
        checks.append(Check(False, "workspaces", f"stale git lock: {names}", fix))
    elif settings.gc_loose_objects and loose[biggest] > 2 * settings.gc_loose_objects:
        fix = f"git -C {biggest} gc (or set workspaces.gc_every_commits above 0)"
        checks.append(Check(False, "workspaces", detail, fix, warning=True))
    else:
        checks.append(Check(True, "workspaces", detail))
    return checks


def _loose_objects(git_dir: Path) -> int:
    objects = git_dir / "objects"
    return sum(
        1 for sub in objects.glob("[0-9a-f][0-9a-f]") for entry in sub.iterdir() if entry.is_file()
    )
