"""End to end: an OpenClaw home into a Nexflow home that already has the user's own
config, persona file, secrets and owner, with the real installer and reminder store."""

from __future__ import annotations

import json
import os
from datetime import UTC, date
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from importers_support import HOMES, rows_of, run, snapshot

from nexflow.config import load_config
from nexflow.importers import Report
from nexflow.memory import MemoryService, notes
from nexflow.storage import SQLStorage
from nexflow.tasks import ReminderService

TELEGRAM = "123456789:AAopenclawTelegramTestToken"
DISCORD = "MTIzNDU2Nzg5.openclaw.discordTestToken"
MY_CONFIG = """\
# My Nexflow settings
web:
  port: 8081   # behind the proxy
connectors: {}
security:
  owner:
    web: [owner]
"""
MY_USER = "# About me\n\nI write my own notes here.\n"


@pytest.fixture
async def nexflow(home: Path) -> Path:
    """A Nexflow home in use: config, persona file, secrets and the owner exist."""
    (home / "config.yml").write_text(MY_CONFIG, encoding="utf-8")
    (home / "workspace").mkdir()
    (home / "workspace" / "USER.md").write_text(MY_USER, encoding="utf-8")
    secrets = home / "secrets.env"
    secrets.write_text("OPENAI_API_KEY=sk-mine\n", encoding="utf-8")
    secrets.chmod(0o600)
    storage = SQLStorage(home / "nexflow.db")
    await storage.open()
    await storage.create_user("owner", "owner", "web", "owner")
    await storage.close()
    return home


async def owner_of(home: Path) -> str:
    storage = SQLStorage(home / "nexflow.db")
    await storage.open()
    try:
        found = await storage.find_user("web", "owner")
    finally:
        await storage.close()
    assert found is not None
    return found[0]


async def test_dry_run_changes_nothing_and_says_what_would_move(nexflow: Path) -> None:
    before = snapshot(nexflow)
    report = await run("openclaw", HOMES / "openclaw", nexflow, dry_run=True)
    assert snapshot(nexflow) == before
    assert rows_of(report, "skill") == {
        "canvas": "failed",
        "tavily": "would import",
        "evil-helper": "flagged",
    }
    assert set(rows_of(report, "persona").values()) == {"would import"}
    assert set(rows_of(report, "memory").values()) == {"would import"}
    assert rows_of(report, "channel")["telegram bot token"] == "would import"
    assert list(rows_of(report, "reminder").values()).count("would import") == 3
    assert "dry run: nothing was changed" in report.notes


@pytest.fixture
async def imported(nexflow: Path) -> tuple[Path, Report]:
    return nexflow, await run("openclaw", HOMES / "openclaw", nexflow)


def files_named(root: Path, name: str) -> list[Path]:
    return list(root.rglob(name))


def read(path: Path) -> str:
    return path.read_text(encoding="utf-8")


async def test_clean_skills_are_installed_the_hostile_one_only_reported(
    imported: tuple[Path, Report],
) -> None:
    nexflow, report = imported
    skills = {r.item: r for r in report.rows if r.kind == "skill"}
    assert skills["tavily"].status == "imported"
    assert skills["canvas"].status == "failed"
    assert "does not load" in skills["canvas"].reason
    evil = skills["evil-helper"]
    assert evil.status == "flagged"
    details = "\n".join(evil.details)
    for rule in ("pipe-to-shell", "credential-read", "hidden-instructions"):
        assert rule in details
    assert "nexflow skills install" in details and "evil-helper" in details
    assert not files_named(nexflow, "sync.sh")  # not installed, not left in quarantine
    assert list(json.loads(read(nexflow / "skills.lock"))["skills"]) == ["tavily"]
    assert files_named(nexflow / "skills", "SKILL.md") == [nexflow / "skills/tavily/SKILL.md"]
    assert not report.ok  # canvas does not load: the exit code says so


async def test_persona_files_are_merged_keeping_the_users_own(
    imported: tuple[Path, Report],
) -> None:
    nexflow, _ = imported
    workspace = read(nexflow / "workspace" / "WORKSPACE.md")
    for name, phrase in (
        ("SOUL.md", "genuinely helpful"),
        ("IDENTITY.md", "space lobster"),
        ("AGENTS.md", "destructive commands"),
    ):
        assert f"{name}, imported from OpenClaw" in workspace and phrase in workspace
    user = read(nexflow / "workspace" / "USER.md")
    assert user.startswith(MY_USER) and "vegetarian" in user


async def test_memory_goes_to_the_owner_marked_with_its_origin(
    imported: tuple[Path, Report],
) -> None:
    nexflow, _ = imported
    folder = notes.user_dir(nexflow / "workspace", await owner_of(nexflow))
    chunks = notes.parse(read(folder / "MEMORY.md"))
    assert [c.text for c in chunks][:2] == [
        "Ana's sister Bea lives in Porto. #family",
        "Ana is allergic to penicillin.",
    ]
    assert all(c.tainted == ("import:openclaw",) for c in chunks)
    day = read(folder / "2026-11-30.md")
    assert day.startswith("# 2026-11-30\n") and "dentist" in day
    assert "Standup moved" in read(folder / "2026-12-01.md")


async def test_tokens_go_to_secrets_and_config_references_them(
    imported: tuple[Path, Report],
) -> None:
    nexflow, report = imported
    secrets = nexflow / "secrets.env"
    assert secrets.stat().st_mode & 0o777 == 0o600
    assert read(secrets) == (
        f"OPENAI_API_KEY=sk-mine\nTELEGRAM_BOT_TOKEN={TELEGRAM}\nDISCORD_BOT_TOKEN={DISCORD}\n"
    )
    config_text = read(nexflow / "config.yml")
    assert TELEGRAM not in config_text and DISCORD not in config_text
    assert "# My Nexflow settings" in config_text and "# behind the proxy" in config_text
    config = load_config(nexflow / "config.yml", environ={"NEXFLOW_HOME": str(nexflow)})
    assert config.connectors["telegram"]["bot_token"] == TELEGRAM
    assert config.connectors["discord"]["bot_token"] == DISCORD
    assert config.security.channels["telegram"].policy == "allowlist"
    assert config.security.channels["telegram"].allow == ["111111111"]
    assert config.security.channels["discord"].allow == ["222222222222222222"]
    assert config.web.port == 8081
    assert rows_of(report, "allowlist")["telegram @alice_example"] == "skipped"


async def test_jobs_become_reminders_the_gateway_lists(imported: tuple[Path, Report]) -> None:
    nexflow, report = imported
    reminders = {r.item: r for r in report.rows if r.kind == "reminder"}
    assert {k: v.status for k, v in reminders.items()} == {
        "Weekday calendar brief": "imported",
        "Stretch": "imported",
        "Passport": "imported",
        "Old dentist reminder": "skipped",
        "Every 45 minutes": "skipped",
        "Clean cache": "skipped",
        "Paused digest": "skipped",
    }
    assert "runs a program" in reminders["Clean cache"].reason
    delivered: list[tuple[str, str, str, str]] = []

    async def deliver(channel: str, chat: str, session: str, text: str) -> None:
        delivered.append((channel, chat, session, text))

    service = ReminderService(nexflow / "nexflow.db", deliver, timezone=UTC)
    await service.start()
    try:
        listed = await service.list_for(await owner_of(nexflow))
    finally:
        await service.stop()
    assert delivered == []
    got = {
        (r.text, r.kind, r.schedule, r.timezone, r.target.channel, r.target.chat_id) for r in listed
    }
    tg = ("telegram", "111111111")
    assert got == {
        ("Summarize my calendar for today.", "cron", "0 8 * * 1-5", "Europe/Berlin", *tg),
        ("Stand up and stretch.", "cron", "*/30 * * * *", "UTC", *tg),
        ("Renew the passport.", "once", "2030-01-15T09:00:00+00:00", "UTC", *tg),
    }
    brief = next(r for r in listed if r.schedule == "0 8 * * 1-5")
    assert brief.next_run is not None
    local = brief.next_run.astimezone(ZoneInfo("Europe/Berlin"))
    assert (local.hour, local.minute) == (8, 0) and local.weekday() < 5


async def test_running_it_again_changes_nothing(nexflow: Path) -> None:
    await run("openclaw", HOMES / "openclaw", nexflow)
    before = snapshot(nexflow, skip=("nexflow.db",))
    again = await run("openclaw", HOMES / "openclaw", nexflow)
    assert snapshot(nexflow, skip=("nexflow.db",)) == before
    statuses = {r.status for r in again.rows}
    assert not statuses & {"imported", "updated", "would import", "conflict"}
    assert list(rows_of(again, "reminder").values()).count("unchanged") == 3
    # and a dry run after it agrees
    dry = await run("openclaw", HOMES / "openclaw", nexflow, dry_run=True)
    assert [(r.item, r.status) for r in dry.rows] == [(r.item, r.status) for r in again.rows]


async def test_a_changed_source_updates_its_section_and_keeps_later_notes(
    nexflow: Path,
    source_copy,  # type: ignore[no-untyped-def]
) -> None:
    root = source_copy("openclaw")
    await run("openclaw", root, nexflow)
    folder = notes.user_dir(nexflow / "workspace", await owner_of(nexflow))
    notes.append_note(folder, date(2026, 11, 30), "Saved in Nexflow after the import", [])
    (root / "workspace" / "memory" / "2026-11-30.md").write_text(
        "- The dentist moved to 13 December.\n", encoding="utf-8"
    )
    report = await run("openclaw", root, nexflow)
    assert rows_of(report, "memory")["workspace/memory/2026-11-30.md"] == "updated"
    text = read(folder / "2026-11-30.md")
    assert "13 December" in text and "12 December" not in text
    assert "Saved in Nexflow after the import" in text
    assert [c.tainted for c in notes.parse(text)] == [("import:openclaw",), ()]


async def test_a_broken_secrets_file_is_reported_not_overwritten(nexflow: Path) -> None:
    secrets = nexflow / "secrets.env"
    os.chmod(secrets, 0o644)
    report = await run("openclaw", HOMES / "openclaw", nexflow)
    token = next(r for r in report.rows if r.item == "telegram bot token")
    assert token.status == "failed" and "chmod 600" in token.reason
    assert secrets.read_text(encoding="utf-8") == "OPENAI_API_KEY=sk-mine\n"
    assert "connectors:" in (nexflow / "config.yml").read_text(encoding="utf-8")
    assert "bot_token" not in (nexflow / "config.yml").read_text(encoding="utf-8")


async def test_imported_notes_are_found_by_memory_search(imported: tuple[Path, Report]) -> None:
    nexflow, _ = imported
    owner = await owner_of(nexflow)
    memory = MemoryService(nexflow / "memory.db", nexflow / "workspace", embedder=None)
    await memory.start()
    try:
        result = await memory.search(owner, "penicillin allergy", 3)
        standup = await memory.search(owner, "standup weekdays", 3)
    finally:
        await memory.stop()
    top = result.hits[0].item
    assert top.text == "Ana is allergic to penicillin."
    assert top.tainted == ("import:openclaw",)  # a turn reading it back is gated
    assert standup.hits[0].item.path.endswith("2026-12-01.md")
