"""One import, start to end: find the owner, then skills, persona, memory, channels and
reminders, each step reporting its rows. A dry run changes nothing: files are only
computed, the database is read through a read-only connection, skills are planned in a
temporary folder."""

from __future__ import annotations

import asyncio
import contextlib
import re
import sqlite3
from dataclasses import dataclass
from datetime import UTC, datetime, tzinfo
from pathlib import Path
from typing import TYPE_CHECKING

from nexflow.importers import channels, memory, persona, reminders, schedules, skills
from nexflow.importers.model import Report, ReportRow, SourceHome
from nexflow.importers.writes import Writer
from nexflow.memory import notes

if TYPE_CHECKING:
    from nexflow.config.model import NexflowConfig

OWNER_PLACEHOLDER = "<owner>"
_TARGET_PREFIX = re.compile(r"^(?:user|channel|chat|group|dm):", re.IGNORECASE)


@dataclass(frozen=True, slots=True)
class Target:
    """Where the import writes: the Nexflow home and the files in it."""

    home: Path
    workspace: Path
    config_path: Path
    secrets_path: Path
    db_path: Path  # the SQLite file (reminders' job store)
    storage_url: str | None = None  # the gateway's database; None: sqlite:///<db_path>

    @classmethod
    def from_config(cls, config: NexflowConfig, config_path: Path | None) -> Target:
        return cls(
            home=config.home,
            workspace=config.workspace_dir,
            config_path=config_path or config.home / "config.yml",
            secrets_path=config.secrets_file or config.home / "secrets.env",
            db_path=config.database_path,
            storage_url=config.storage_url,
        )


async def run_import(
    source: SourceHome,
    target: Target,
    *,
    dry_run: bool,
    now: datetime | None = None,
    default_tz: tzinfo | None = None,
) -> Report:
    owner = await _owner(target, dry_run=dry_run)
    rows = await asyncio.to_thread(
        _apply,
        source,
        target,
        owner,
        dry_run,
        now or datetime.now(UTC),
        default_tz or reminders.local_zone(),
    )
    return Report(source.tool, source.root, dry_run, tuple(rows), _notes(source, rows, dry_run))


def _apply(
    source: SourceHome,
    target: Target,
    owner: str | None,
    dry_run: bool,
    now: datetime,
    default_tz: tzinfo,
) -> list[ReportRow]:
    writer = Writer(target.home, dry_run=dry_run)
    folder = (
        notes.user_dir(target.workspace, owner)
        if owner
        else target.workspace / "memory" / OWNER_PLACEHOLDER
    )
    rows = list(source.problems)
    rows += skills.import_skills(source, target.home, dry_run=dry_run)
    rows += persona.import_persona(source, target.workspace, writer)
    rows += memory.import_memory(source, folder, writer)
    rows += channels.import_channels(
        source, channels.ConfigFiles(target.config_path, target.secrets_path), writer
    )
    planned, skipped = plan_reminders(source, now)
    rows += skipped
    rows += reminders.write_reminders(
        target.storage_url or target.db_path,
        owner or OWNER_PLACEHOLDER,
        planned,
        dry_run=dry_run,
        default_tz=default_tz,
    )
    return rows


def plan_reminders(
    source: SourceHome, now: datetime
) -> tuple[list[reminders.PlannedReminder], list[ReportRow]]:
    """The jobs that can become reminders, and a row for each one that cannot."""
    fallback = _fallback_chat(source)
    planned: list[reminders.PlannedReminder] = []
    skipped: list[ReportRow] = []
    for job in source.jobs:
        where = source.rel(job.source)
        mapped = schedules.map_schedule(job, now)
        if isinstance(mapped, str):
            skipped.append(ReportRow("reminder", job.name, where, "-", "skipped", mapped))
            continue
        text = job.text or job.name
        note = ""
        if job.channel in channels.SUPPORTED and job.chat_id:
            channel, chat = job.channel, _TARGET_PREFIX.sub("", job.chat_id)
        elif fallback is not None:
            channel, chat = fallback
            why = (
                f"{job.channel} has no Nexflow connector"
                if job.channel
                else "no chat in the source"
            )
            note = f"{why}; goes to {channel}:{chat}"
        else:
            why = f"delivers to {job.channel}" if job.channel else "names no chat"
            skipped.append(
                ReportRow(
                    "reminder",
                    job.name,
                    where,
                    "-",
                    "skipped",
                    f"{why}, and no Telegram chat to send it to instead; "
                    "ask for it again in the chat you want it in",
                )
            )
            continue
        planned.append(reminders.PlannedReminder(job, mapped, channel, chat, text, where, note))
    return planned, skipped


def _fallback_chat(source: SourceHome) -> tuple[str, str] | None:
    """The one Telegram user the source allowed (a private chat's id is the user's)."""
    for setting in source.channels:
        ids = [a for a in setting.allow if a.isdigit()]
        if setting.channel == "telegram" and len(ids) == 1:
            return "telegram", ids[0]
    return None


async def _owner(target: Target, *, dry_run: bool) -> str | None:
    """The owner's user id (created as the web identity would); a dry run only reads."""
    url = target.storage_url
    if url is None or url.startswith("sqlite:///"):
        db_path = Path(url.removeprefix("sqlite:///")) if url else target.db_path
        if dry_run:
            return await asyncio.to_thread(_owner_read_only, db_path)
        url = f"sqlite:///{db_path}"
    from nexflow.storage.engine import engine_for
    from nexflow.storage.sql_storage import SQLStorage
    from nexflow.web.identity import OWNER_SENDER

    storage = SQLStorage(engine_for(url))  # Postgres: opening it only migrates the schema
    await storage.open()
    try:
        if dry_run:
            row = await storage.engine.run(
                lambda c: c.execute(
                    "SELECT id FROM users WHERE role='owner' ORDER BY created_at LIMIT 1"
                ).fetchone()
            )
            return str(row["id"]) if row else None
        return await storage.create_user("owner", "owner", "web", OWNER_SENDER)
    finally:
        await storage.close()


def _owner_read_only(db_path: Path) -> str | None:
    if not db_path.is_file():
        return None
    conn = sqlite3.connect(f"{db_path.resolve().as_uri()}?mode=ro&immutable=1", uri=True)
    with contextlib.closing(conn):
        try:
            row = conn.execute(
                "SELECT id FROM users WHERE role='owner' ORDER BY created_at LIMIT 1"
            ).fetchone()
        except sqlite3.OperationalError:
            return None
    return str(row[0]) if row else None


def _notes(source: SourceHome, rows: list[ReportRow], dry_run: bool) -> tuple[str, ...]:
    out: list[str] = []
    done = ("would import", "would update") if dry_run else ("imported", "updated")
    kinds = {r.kind for r in rows if r.status in done}
    if dry_run:
        out.append("dry run: nothing was changed")
    if "reminder" in kinds and not dry_run:
        out.append("a running gateway reads new reminders at its next start: restart it")
    if "channel" in kinds:
        out.append(
            "connectors need their extra: pip install 'nexflow[telegram]' / 'nexflow[discord]'"
        )
    if "memory" in kinds:
        out.append(
            f"imported notes are marked '<!-- tainted: import:{source.tool} -->'; "
            "delete a mark to vouch for that note"
        )
    if kinds & {"memory", "reminder"}:
        out.append(
            "memory and reminders belong to the owner; from another channel, "
            "/link it to the owner's identity to use them there"
        )
    return tuple(out)
