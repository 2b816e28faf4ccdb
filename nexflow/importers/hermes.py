"""Reading a Hermes Agent home (``~/.hermes``), as Hermes' docs describe it.

* ``config.yaml`` (read to report it when broken; its model settings are not imported),
  ``.env`` with ``TELEGRAM_BOT_TOKEN``, ``TELEGRAM_ALLOWED_USERS``, ``DISCORD_BOT_TOKEN``,
  ``DISCORD_ALLOWED_USERS`` (comma-separated ids).
* ``SOUL.md`` (and ``AGENTS.md`` if one is there); ``memories/MEMORY.md`` and
  ``memories/USER.md`` (entries separated by ``§`` lines are split into paragraphs).
* skills in ``skills/<category>/<name>/SKILL.md`` or ``skills/<name>/SKILL.md``
  (``skills/.hub`` is the hub's state and skipped).
* cron jobs in ``cron/jobs.json``: ``{"jobs": [{name, prompt, enabled, schedule: {kind:
  once (run_at) | interval (minutes) | cron (expr or expression)}, repeat: {times},
  deliver: "origin" | "local" | "<platform>[:<chat id>]", origin: {platform, chat_id},
  script}]}``. A job with a ``script`` runs a program and is reported, not imported.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from nexflow.importers import base
from nexflow.importers.files import read_env, read_yaml
from nexflow.importers.model import ChannelSetting, CronJob, MemoryFile, PersonaFile, SourceHome

_CHANNELS = {
    "telegram": ("TELEGRAM_BOT_TOKEN", "TELEGRAM_ALLOWED_USERS"),
    "discord": ("DISCORD_BOT_TOKEN", "DISCORD_ALLOWED_USERS"),
}


def looks_like(root: Path) -> bool:
    return any((root / n).exists() for n in ("config.yaml", ".env", "SOUL.md", "memories"))


def read(root: Path) -> SourceHome:
    found = base.Found("hermes", "Hermes Agent", root)
    config: Any = found.load_present(read_yaml, root / "config.yaml")
    if isinstance(config, dict) and isinstance(config.get("timezone"), str):
        found.default_tz = config["timezone"].strip() or None
    env_path = root / ".env"
    env = found.load_present(read_env, env_path)

    base.add_persona(found, root, ("SOUL.md", "AGENTS.md", "IDENTITY.md"))
    user = root / "memories" / "USER.md"
    if user.is_file():
        found.persona.append(PersonaFile("USER.md", user, "USER.md"))
    memory = root / "memories" / "MEMORY.md"
    if memory.is_file():
        found.memory.append(MemoryFile(memory, None))
    base.add_skills(found, root / "skills")
    if env:
        for name, (token_key, allow_key) in _CHANNELS.items():
            token = env.get(token_key, "").strip()
            if token:
                found.channels.append(
                    ChannelSetting(
                        name,
                        env_path,
                        token_key,
                        token,
                        base.allow_list(env.get(allow_key, "")),
                        allow_key=allow_key,
                    )
                )
    _jobs(found, root / "cron" / "jobs.json")
    return found.build()


def _jobs(found: base.Found, path: Path) -> None:
    for name, raw in base.cron_entries(found, path):
        job = _job(found, name, raw, path)
        if job is not None:
            found.jobs.append(job)


def _job(found: base.Found, name: str, raw: dict[str, Any], path: Path) -> CronJob | None:
    schedule = base.mapping(raw.get("schedule"))
    kind = schedule.get("kind")
    channel, chat_id = _target(raw)
    repeat = base.mapping(raw.get("repeat"))
    times = repeat.get("times")
    common: dict[str, Any] = {
        "name": name,
        "text": base.text_of(raw.get("prompt")),
        "source": path,
        "channel": channel,
        "chat_id": chat_id,
        "enabled": raw.get("enabled", True) is not False,
        "command": base.text_of(raw.get("script")) or None,
        "tz": found.default_tz,
        "limited": f"repeats {times} times" if isinstance(times, int) and times > 0 else None,
    }
    if kind == "once":
        return CronJob(kind="at", at=base.parse_time(schedule.get("run_at")), **common)
    if kind == "interval" and isinstance(schedule.get("minutes"), int | float):
        return CronJob(
            kind="every",
            every_s=float(schedule["minutes"]) * 60,
            anchor=base.parse_time(raw.get("next_run_at")),
            **common,
        )
    if kind == "cron":
        expr = base.text_of(schedule.get("expr")) or base.text_of(schedule.get("expression"))
        return CronJob(kind="cron", expr=expr or None, **common)
    found.problem("reminder", name, path, f"unknown schedule kind {kind!r}")
    return None


def _target(raw: dict[str, Any]) -> tuple[str | None, str | None]:
    deliver = base.text_of(raw.get("deliver")) or "origin"
    origin = base.mapping(raw.get("origin"))
    if deliver == "origin":
        platform = base.text_of(origin.get("platform")) or None
        chat = base.text_of(str(origin.get("chat_id") or "")) or None
        return platform, chat
    if deliver == "local":
        return None, None
    platform, _, chat = deliver.partition(":")
    if not chat and base.text_of(origin.get("platform")) == platform:
        chat = str(origin.get("chat_id") or "")
    return platform or None, chat.strip() or None
