"""A nanobot home: a broken jobs.json is reported and the rest still imports; an existing
connector section is a conflict, never overwritten."""

from __future__ import annotations

from pathlib import Path

from importers_support import HOMES, rows_of, run, snapshot

TOKEN = "654321987:AAnanobotTelegramTestToken"


def read(path: Path) -> str:
    return path.read_text(encoding="utf-8")


def memory_file(home: Path) -> Path:
    return next(home.glob("workspace/memory/*/MEMORY.md"))


async def test_broken_file_is_reported_and_the_rest_imported(home: Path) -> None:
    report = await run("nanobot", HOMES / "nanobot", home)
    broken = next(r for r in report.rows if r.source == "workspace/cron/jobs.json")
    assert broken.status == "failed"
    assert broken.reason.startswith("invalid JSON at line 3")
    assert rows_of(report, "memory") == {
        "HISTORY.md": "skipped",
        "workspace/memory/MEMORY.md": "imported",
    }
    assert rows_of(report, "skill") == {"weather": "imported"}
    assert set(rows_of(report, "persona").values()) == {"imported"}
    assert "Mochi" in read(memory_file(home))
    assert "nanobot 🐈" in read(home / "workspace" / "WORKSPACE.md")
    assert "Jun" in read(home / "workspace" / "USER.md")
    reminders = {r.item: r for r in report.rows if r.kind == "reminder"}
    assert {k: (v.status, v.destination) for k, v in reminders.items()} == {
        "Drink water": ("imported", "reminder cron 0 * * * * → telegram:333333333"),
        "Morning standup": ("imported", "reminder cron 30 7 * * 1-5 → telegram:333333333"),
        "Tax filing": (
            "imported",
            "reminder 2031-02-16T09:20:00+00:00 → telegram:333333333",
        ),
    }
    # nanobot delivered it on WhatsApp; Nexflow has no such connector: the one Telegram user
    assert reminders["Tax filing"].reason == (
        "whatsapp has no Nexflow connector; goes to telegram:333333333"
    )
    assert read(home / "secrets.env") == f"TELEGRAM_BOT_TOKEN={TOKEN}\n"
    assert rows_of(report, "channel") == {"telegram bot token": "imported", "discord": "skipped"}


async def test_an_existing_connector_is_a_conflict_and_kept(home: Path) -> None:
    mine = "connectors:\n  telegram:\n    bot_token: ${MY_TG}   # my own bot\n"
    (home / "config.yml").write_text(mine, encoding="utf-8")
    report = await run("nanobot", HOMES / "nanobot", home)
    token = next(r for r in report.rows if r.item == "telegram bot token")
    assert token.status == "conflict"
    assert "already configured; kept yours" in token.reason
    assert any("to use the imported bot instead" in d for d in token.details)
    assert not any(TOKEN in d for d in token.details)
    assert not (home / "secrets.env").exists()  # the token is not written anywhere
    config = read(home / "config.yml")
    assert config.startswith(mine) and TOKEN not in config
    assert rows_of(report, "allowlist") == {"telegram allow list (1 ids)": "imported"}
    assert "security:\n  channels:\n    telegram:" in config
    assert not report.ok


async def test_a_different_secret_under_the_same_name_is_kept(home: Path) -> None:
    secrets = home / "secrets.env"
    secrets.write_text("TELEGRAM_BOT_TOKEN=someone-elses\n", encoding="utf-8")
    secrets.chmod(0o600)
    report = await run("nanobot", HOMES / "nanobot", home)
    assert rows_of(report, "channel")["telegram bot token"] == "imported"
    assert read(secrets) == (
        f"TELEGRAM_BOT_TOKEN=someone-elses\nTELEGRAM_BOT_TOKEN_NANOBOT={TOKEN}\n"
    )
    assert "${TELEGRAM_BOT_TOKEN_NANOBOT}" in read(home / "config.yml")


async def test_dry_run_on_an_empty_home_creates_nothing(home: Path) -> None:
    report = await run("nanobot", HOMES / "nanobot", home, dry_run=True)
    assert snapshot(home) == {}
    assert "would import" in {r.status for r in report.rows}
    assert "<owner>" in next(
        r.destination for r in report.rows if r.status == "would import" and r.kind == "memory"
    )


async def test_an_inline_section_gets_a_snippet_to_add_by_hand(home: Path) -> None:
    mine = "connectors: {discord: {bot_token: '${DISCORD}'}}\n"
    (home / "config.yml").write_text(mine, encoding="utf-8")
    report = await run("nanobot", HOMES / "nanobot", home)
    token = next(r for r in report.rows if r.item == "telegram bot token")
    assert token.status == "conflict"
    assert "written inline" in token.reason and "TELEGRAM_BOT_TOKEN" in token.reason
    assert "    bot_token: ${TELEGRAM_BOT_TOKEN}" in token.details
    assert read(home / "config.yml").startswith(mine)
    assert read(home / "secrets.env") == f"TELEGRAM_BOT_TOKEN={TOKEN}\n"
