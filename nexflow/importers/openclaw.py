"""Reading an OpenClaw home (``~/.openclaw``), as OpenClaw's docs describe it.

* ``openclaw.json`` (JSON5): ``agents.defaults.workspace`` (default ``<home>/workspace``);
  ``channels.telegram`` (``botToken``, ``allowFrom``) and ``channels.discord`` (``token``,
  ``allowFrom`` or ``dm.allowFrom``). Tokens may also come from ``<home>/.env``
  (``TELEGRAM_BOT_TOKEN``, ``DISCORD_BOT_TOKEN``) or be ``${VAR}`` references to it.
* the workspace: ``SOUL.md``, ``AGENTS.md``, ``IDENTITY.md``, ``USER.md``, ``MEMORY.md``,
  daily notes ``memory/YYYY-MM-DD.md``, skills in ``skills/<name>/SKILL.md``.
* managed skills in ``<home>/skills/<name>/SKILL.md``.
* cron jobs in ``<home>/cron/jobs.json``: ``{"jobs": [{name, enabled, schedule: {kind:
  at|every|cron, at|atMs, everyMs, anchorMs, expr, tz}, payload: {kind: systemEvent
  (text) | agentTurn (message)}, delivery: {channel, to}}]}``. A payload of another kind,
  or one carrying a ``command``, runs a program and is reported, not imported.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from nexflow.importers import base
from nexflow.importers.files import read_env, read_json5
from nexflow.importers.model import ChannelSetting, CronJob, SourceHome

_REF = re.compile(r"^\$\{([A-Za-z_][A-Za-z0-9_]*)\}$")
_TOKENS = {
    "telegram": ("botToken", "TELEGRAM_BOT_TOKEN"),
    "discord": ("token", "DISCORD_BOT_TOKEN"),
}


def looks_like(root: Path) -> bool:
    return (root / "openclaw.json").is_file() or (root / "workspace").is_dir()


def read(root: Path) -> SourceHome:
    found = base.Found("openclaw", "OpenClaw", root)
    config_path = root / "openclaw.json"
    config = found.load_object(read_json5, config_path)
    env = found.load_present(read_env, root / ".env") or {}

    workspace = base.workspace_dir(root, config)
    base.add_persona(found, workspace)
    base.add_memory_file(found, workspace / "MEMORY.md")
    base.add_daily_notes(found, workspace / "memory")
    base.add_skills(found, root / "skills")
    base.add_skills(found, workspace / "skills")
    if config is not None:
        _channels(found, config, config_path, env)
    _jobs(found, root / "cron" / "jobs.json")
    return found.build()


def _channels(found: base.Found, config: dict[str, Any], path: Path, env: dict[str, str]) -> None:
    channels = config.get("channels")
    if not isinstance(channels, dict):
        return
    for name, section in channels.items():
        if not isinstance(section, dict):
            continue
        token_key, env_name = _TOKENS.get(name, ("token", ""))
        raw = section.get(token_key) or section.get("token")
        token = base.text_of(raw)
        if ref := _REF.match(token):
            token = env.get(ref.group(1), "")
        if not token and env_name:
            token = env.get(env_name, "")
        allow = base.allow_list(section.get("allowFrom")) or base.allow_list(
            base.get(section, "dm", "allowFrom")
        )
        found.channels.append(ChannelSetting(name, path, f"channels.{name}", token or None, allow))


def _jobs(found: base.Found, path: Path) -> None:
    for name, raw in base.cron_entries(found, path):
        schedule = base.mapping(raw.get("schedule"))
        payload = base.mapping(raw.get("payload"))
        delivery = base.mapping(raw.get("delivery"))
        kind = schedule.get("kind")
        if kind not in ("at", "every", "cron"):
            found.problem("reminder", name, path, f"unknown schedule kind {kind!r}")
            continue
        payload_kind = payload.get("kind")
        command = base.text_of(payload.get("command") or raw.get("command")) or (
            None if payload_kind in ("systemEvent", "agentTurn", None) else str(payload_kind)
        )
        every = schedule.get("everyMs")
        found.jobs.append(
            CronJob(
                name=name,
                text=base.text_of(payload.get("text")) or base.text_of(payload.get("message")),
                kind=kind,
                source=path,
                at=base.parse_time(schedule.get("at") or schedule.get("atMs")),
                every_s=every / 1000 if isinstance(every, int | float) else None,
                expr=base.text_of(schedule.get("expr")) or None,
                tz=base.text_of(schedule.get("tz")) or "UTC",  # OpenClaw reads cron in UTC
                anchor=base.parse_time(schedule.get("anchorMs"))
                or base.parse_time(base.get(raw, "state", "nextRunAtMs")),
                channel=base.text_of(delivery.get("channel")) or None,
                chat_id=base.text_of(str(delivery.get("to") or "")) or None,
                enabled=raw.get("enabled", True) is not False,
                command=command or None,
            )
        )
