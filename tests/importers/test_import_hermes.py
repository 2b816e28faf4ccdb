"""A Hermes Agent home: § separated memories, .env channel settings, jobs with scripts,
repeat limits and local delivery."""

from __future__ import annotations

from pathlib import Path

from importers_support import HOMES, rows_of, run

from nexflow.memory import notes


def read(path: Path) -> str:
    return path.read_text(encoding="utf-8")


def memory_file(home: Path) -> Path:
    return next(home.glob("workspace/memory/*/MEMORY.md"))


async def test_hermes_import(home: Path) -> None:
    report = await run("hermes", HOMES / "hermes", home)
    assert rows_of(report, "skill") == {"summarize": "imported"}
    assert (home / "skills" / "summarize" / "SKILL.md").is_file()
    memory = read(memory_file(home))
    chunks = notes.parse(memory)
    assert [c.text for c in chunks] == [
        "Rui prefers metric units.",
        "The home server is a NUC named atlas; backups run nightly.",
        "Deploys happen on Thursdays.",
    ]
    assert {c.tainted for c in chunks} == {("import:hermes",)}
    assert "embedded Rust" in read(home / "workspace" / "USER.md")
    assert "direct and pragmatic" in read(home / "workspace" / "WORKSPACE.md")
    assert "777777777:AAhermesTelegramTestToken" in read(home / "secrets.env")
    reminders = {r.item: r for r in report.rows if r.kind == "reminder"}
    assert {
        k: (v.status, v.destination) for k, v in reminders.items() if v.status != "skipped"
    } == {
        "Morning brief": ("imported", "reminder cron 0 9 * * * → telegram:444444444"),
        "Check the build": ("imported", "reminder cron 0 */2 * * * → telegram:555555555"),
    }
    skipped = {k: v.reason for k, v in reminders.items() if v.status == "skipped"}
    assert set(skipped) == {"Local note", "Nightly backup", "Every 90 minutes", "Three pings"}
    assert "names no chat" in skipped["Local note"]  # two Telegram users: no guess
    assert "runs a program" in skipped["Nightly backup"]
    assert "has no crontab equivalent" in skipped["Every 90 minutes"]
    assert "repeats 3 times" in skipped["Three pings"]
    assert report.ok


async def test_broken_config_yaml_is_reported_the_rest_imports(
    home: Path,
    source_copy,  # type: ignore[no-untyped-def]
) -> None:
    root = source_copy("hermes")
    (root / "config.yaml").write_text("model:\n  provider: [openrouter\n", encoding="utf-8")
    report = await run("hermes", root, home)
    broken = next(r for r in report.rows if r.source == "config.yaml")
    assert broken.status == "failed" and broken.reason.startswith("invalid YAML at line")
    assert set(rows_of(report, "persona").values()) == {"imported"}
    assert rows_of(report, "reminder")["Morning brief"] == "imported"
