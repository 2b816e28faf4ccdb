from datetime import UTC, date, datetime
from pathlib import Path

import pytest
from importers_support import HOMES

from nexflow.importers import SourceNotFound, read_source


def test_openclaw_home() -> None:
    home = read_source("openclaw", HOMES / "openclaw")
    # the configured workspace (~/.openclaw/workspace) is another machine's: <home>/workspace
    assert {(p.name, p.target) for p in home.persona} == {
        ("SOUL.md", "WORKSPACE.md"),
        ("IDENTITY.md", "WORKSPACE.md"),
        ("AGENTS.md", "WORKSPACE.md"),
        ("USER.md", "USER.md"),
    }
    assert [(home.rel(m.path), m.day) for m in home.memory] == [
        ("workspace/MEMORY.md", None),
        ("workspace/memory/2026-11-30.md", date(2026, 11, 30)),
        ("workspace/memory/2026-12-01-standup.md", date(2026, 12, 1)),
    ]
    assert sorted(s.name for s in home.skills) == ["canvas", "evil-helper", "tavily"]
    channels = {c.channel: c for c in home.channels}
    assert channels["telegram"].token == "123456789:AAopenclawTelegramTestToken"
    assert channels["telegram"].allow == ("111111111", "@alice_example")
    # "${DISCORD_BOT_TOKEN}" is resolved from <home>/.env; the allow list is under dm
    assert channels["discord"].token == "MTIzNDU2Nzg5.openclaw.discordTestToken"
    assert channels["discord"].allow == ("222222222222222222",)
    assert "whatsapp" in channels
    jobs = {j.name: j for j in home.jobs}
    assert len(jobs) == 7
    brief = jobs["Weekday calendar brief"]
    assert (brief.kind, brief.expr, brief.tz) == ("cron", "0 8 * * 1-5", "Europe/Berlin")
    assert (brief.channel, brief.chat_id, brief.text) == (
        "telegram",
        "111111111",
        "Summarize my calendar for today.",
    )
    assert jobs["Stretch"].every_s == 1800 and jobs["Stretch"].text == "Stand up and stretch."
    assert jobs["Passport"].at == datetime(2030, 1, 15, 9, 0, tzinfo=UTC)
    assert jobs["Clean cache"].command == "rm -rf ~/.cache/thumbnails"
    assert jobs["Paused digest"].enabled is False
    assert home.problems == ()


def test_nanobot_home_reports_broken_and_skipped_files() -> None:
    home = read_source("nanobot", HOMES / "nanobot")
    assert {p.name for p in home.persona} == {"AGENTS.md", "SOUL.md", "USER.md"}
    assert [home.rel(m.path) for m in home.memory] == ["workspace/memory/MEMORY.md"]
    assert [s.name for s in home.skills] == ["weather"]
    assert [(c.channel, c.enabled) for c in home.channels] == [
        ("telegram", True),
        ("discord", False),
    ]
    assert home.channels[0].token == "654321987:AAnanobotTelegramTestToken"
    problems = {(p.source, p.status): p.reason for p in home.problems}
    assert problems[("workspace/memory/HISTORY.md", "skipped")] == (
        "conversation history log, not notes"
    )
    assert problems[("workspace/cron/jobs.json", "failed")].startswith("invalid JSON at line 3")
    jobs = {j.name: j for j in home.jobs}  # from <home>/cron/jobs.json
    assert jobs["Drink water"].every_s == 3600
    assert jobs["Morning standup"].tz == "Asia/Tokyo"
    assert jobs["Tax filing"].at == datetime.fromtimestamp(1929000000, UTC)
    assert jobs["Tax filing"].channel == "whatsapp"


def test_hermes_home() -> None:
    home = read_source("hermes", HOMES / "hermes")
    assert {(p.name, home.rel(p.path), p.target) for p in home.persona} == {
        ("SOUL.md", "SOUL.md", "WORKSPACE.md"),
        ("USER.md", "memories/USER.md", "USER.md"),
    }
    assert [home.rel(m.path) for m in home.memory] == ["memories/MEMORY.md"]
    assert [home.rel(s.path) for s in home.skills] == ["skills/productivity/summarize"]
    assert home.default_tz == "Europe/Lisbon"
    (telegram,) = home.channels
    assert telegram.token == "777777777:AAhermesTelegramTestToken"  # quotes removed
    assert telegram.allow == ("444444444", "555555555")
    jobs = {j.name: j for j in home.jobs}
    assert (jobs["Morning brief"].channel, jobs["Morning brief"].chat_id) == (
        "telegram",
        "444444444",
    )
    assert (jobs["Check the build"].channel, jobs["Check the build"].chat_id) == (
        "telegram",
        "555555555",
    )
    assert jobs["Check the build"].every_s == 7200
    assert (jobs["Local note"].channel, jobs["Local note"].chat_id) == (None, None)
    assert jobs["Nightly backup"].command == "~/.hermes/scripts/backup.sh"
    assert jobs["Three pings"].limited == "repeats 3 times"
    assert all(j.tz == "Europe/Lisbon" for j in home.jobs)


def test_not_a_home(tmp_path: Path) -> None:
    with pytest.raises(SourceNotFound, match="is not a folder"):
        read_source("openclaw", tmp_path / "missing")
    with pytest.raises(SourceNotFound, match="does not look like a nanobot home"):
        read_source("nanobot", tmp_path)


def test_broken_openclaw_config_is_reported_and_the_workspace_still_read(
    source_copy,  # type: ignore[no-untyped-def]
) -> None:
    root = source_copy("openclaw")
    (root / "openclaw.json").write_text("{ channels: { telegram: ", encoding="utf-8")
    home = read_source("openclaw", root)
    (problem,) = home.problems
    assert problem.source == "openclaw.json" and problem.status == "failed"
    assert "invalid JSON5" in problem.reason
    assert home.channels == ()
    assert len(home.persona) == 4 and len(home.jobs) == 7
