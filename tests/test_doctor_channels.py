"""``nexflow doctor``'s channel and workspace checks, on real files and a real git."""

import os
import subprocess
import time
from pathlib import Path

from nexflow.config import NexflowConfig, load_config
from nexflow.doctor_channels import channels, workspaces


def config_for(tmp_path: Path, yml: str = "") -> NexflowConfig:
    path = tmp_path / "config.yml"
    path.write_text(yml)
    return load_config(path, {"NEXFLOW_HOME": str(tmp_path / "home")})


def test_a_configured_telegram_is_checked_not_refused(tmp_path: Path) -> None:
    config = config_for(tmp_path, "connectors:\n  telegram: {bot_token: '123:abc'}\n")
    (web, telegram) = channels(config)
    assert web.ok and telegram.ok and telegram.detail == "configured (aiogram)"


def test_a_bad_channel_section_names_the_key(tmp_path: Path) -> None:
    yml = "connectors:\n  discord: {bot_token: x, stream_edit_interval_s: -1}\n"
    (_, discord) = channels(config_for(tmp_path, yml))
    assert not discord.ok and "connectors.discord.stream_edit_interval_s" in discord.detail


def test_a_channel_without_a_token_fails_with_the_fix(tmp_path: Path) -> None:
    (_, telegram) = channels(config_for(tmp_path, "connectors:\n  telegram: {}\n"))
    assert not telegram.ok and "TELEGRAM_BOT_TOKEN" in telegram.fix


def test_an_outbound_webhook_is_checked(tmp_path: Path) -> None:
    good = (
        "connectors:\n  webhook: {url: 'https://ops.example/hook', secret: 'x123456789abcdef0'}\n"
    )
    (_, webhook) = channels(config_for(tmp_path, good))
    assert webhook.ok and webhook.detail == "configured (aiohttp)"
    bad = "connectors:\n  webhook: {url: 'ftp://ops', secret: 'short'}\n"
    (_, webhook) = channels(config_for(tmp_path, bad))
    assert not webhook.ok and "connectors.webhook.url" in webhook.detail


def make_repo(root: Path) -> Path:
    repo = root / "u1" / "default"
    repo.mkdir(parents=True)
    subprocess.run(["git", "init", "-q", "--initial-branch=main", str(repo)], check=True)
    return repo


def test_workspaces_report_a_stale_lock(tmp_path: Path) -> None:
    config = config_for(tmp_path)
    repo = make_repo(tmp_path / "home" / "workspaces")
    (git, fine) = workspaces(config)
    assert git.ok and fine.ok and "1 under" in fine.detail
    lock = repo / ".git" / "refs" / "heads" / "main.lock"
    lock.write_text("")
    assert workspaces(config)[1].ok  # a fresh lock: a git may be running
    old = time.time() - 3600
    os.utime(lock, (old, old))
    (_, wedged) = workspaces(config)
    assert not wedged.ok and not wedged.warning and "main.lock" in wedged.detail


def test_workspaces_warn_when_loose_objects_pile_up(tmp_path: Path) -> None:
    config = config_for(tmp_path, "workspaces: {gc_loose_objects: 1}\n")
    repo = make_repo(tmp_path / "home" / "workspaces")
    for i in range(3):
        subprocess.run(
            ["git", "-C", str(repo), "hash-object", "-w", "--stdin"],
            input=f"blob {i}",
            text=True,
            check=True,
            capture_output=True,
        )
    (_, piled) = workspaces(config)
    assert piled.warning and not piled.ok and "most loose objects: 3" in piled.detail
    assert "gc" in piled.fix
