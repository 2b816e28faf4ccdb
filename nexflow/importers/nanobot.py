"""Reading a nanobot home (``~/.nanobot``), as nanobot's docs describe it.

* ``config.json`` (camelCase or snake_case keys): ``agents.defaults.workspace`` (default
  ``<home>/workspace``), ``channels.telegram`` / ``channels.discord`` with ``enabled``,
  ``token`` and ``allowFrom``.
* the workspace: ``SOUL.md``, ``AGENTS.md``, ``USER.md`` (``IDENTITY.md`` if present),
  ``memory/MEMORY.md``, daily notes ``memory/YYYY-MM-DD.md`` if any, skills in
  ``skills/<name>/SKILL.md``. ``memory/HISTORY.md`` / ``history.jsonl`` (the conversation
  log) is not notes and is reported as skipped.
* cron jobs in ``<home>/cron/jobs.json`` (older releases) or ``<workspace>/cron/jobs.json``:
  ``{"jobs": [{name, enabled, schedule: {kind: at|every|cron, atMs, everyMs, expr, tz},
  payload: {message, channel, to}}]}``; without ``tz`` nanobot uses the host's zone.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from nexflow.importers import base
from nexflow.importers.files import read_json
from nexflow.importers.model import ChannelSetting, CronJob, SourceHome


def looks_like(root: Path) -> bool:
    return (root / "config.json").is_file() or (root / "workspace").is_dir()


def read(root: Path) -> SourceHome:
    found = base.Found("nanobot", "nanobot", root)
    config_path = root / "config.json"
    config = found.load_object(read_json, config_path)
    workspace = base.workspace_dir(root, config)
    base.add_persona(found, workspace)
    base.add_memory_file(found, workspace / "memory" / "MEMORY.md")
    base.add_daily_notes(found, workspace / "memory")
    for name in ("HISTORY.md", "history.jsonl"):
        path = workspace / "memory" / name
        if path.is_file():
            found.problem("memory", name, path, "conversation history log, not notes", "skipped")
    base.add_skills(found, workspace / "skills")
    if config is not None:
        _channels(found, config, config_path)
    for jobs in (root / "cron" / "jobs.json", workspace / "cron" / "jobs.json"):
        _jobs(found, jobs)
    return found.build()


def _channels(found: base.Found, config: dict[str, Any], path: Path) -> None:
    channels = config.get("channels")
    if not isinstance(channels, dict):
        return
    for name, section in channels.items():
        if not isinstance(section, dict):
            continue  # sendProgress and other settings shared by the channels
        token = base.text_of(section.get("token")) or None
        allow = base.allow_list(base.get(section, "allowFrom"))
        enabled = section.get("enabled", False) is True
        found.channels.append(
            ChannelSetting(name, path, f"channels.{name}", token, allow, enabled=enabled)
        )


def _jobs(found: base.Found, path: Path) -> None:
    for name, raw in base.cron_entries(found, path):
        schedule = base.mapping(raw.get("schedule"))
        payload = base.mapping(raw.get("payload"))
        kind = schedule.get("kind")
        if kind not in ("at", "every", "cron"):
            found.problem("reminder", name, path, f"unknown schedule kind {kind!r}")
            continue
        every = base.get(schedule, "everyMs")
        found.jobs.append(
            CronJob(
                name=name,
                text=base.text_of(payload.get("message")),
                kind=kind,
                source=path,
                at=base.parse_time(base.get(schedule, "atMs")),
                every_s=every / 1000 if isinstance(every, int | float) else None,
                expr=base.text_of(schedule.get("expr")) or None,
                tz=base.text_of(schedule.get("tz")) or None,
                anchor=base.parse_time(base.get(raw, "state", "nextRunAtMs")),
                channel=base.text_of(payload.get("channel")) or None,
                chat_id=base.text_of(str(payload.get("to") or "")) or None,
                enabled=raw.get("enabled", True) is not False,
            )
        )
