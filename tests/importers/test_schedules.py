from datetime import UTC, datetime
from pathlib import Path

import pytest

from nexflow.importers.model import CronJob
from nexflow.importers.schedules import Mapped, map_schedule

NOW = datetime(2026, 12, 5, 12, 0, tzinfo=UTC)
ANCHOR = datetime(2026, 12, 1, 7, 30, tzinfo=UTC)


def job(**kw: object) -> CronJob:
    base: dict[str, object] = {"name": "j", "text": "t", "kind": "every", "source": Path("x")}
    return CronJob(**{**base, **kw})  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("kw", "expected"),
    [
        ({"every_s": 60}, Mapped("cron", "* * * * *", None)),
        ({"every_s": 1800, "tz": "UTC"}, Mapped("cron", "*/30 * * * *", "UTC")),
        ({"every_s": 7200}, Mapped("cron", "0 */2 * * *", None)),
        ({"every_s": 3600}, Mapped("cron", "0 * * * *", None)),
        ({"every_s": 86400, "anchor": ANCHOR}, Mapped("cron", "30 7 * * *", "UTC")),
        (
            {"every_s": 86400, "anchor": ANCHOR, "tz": "Europe/Berlin"},
            Mapped("cron", "30 8 * * *", "Europe/Berlin"),
        ),
        ({"every_s": 7 * 86400, "anchor": ANCHOR}, Mapped("cron", "30 7 * * 2", "UTC")),
        ({"kind": "cron", "expr": "0  9 * * 1-5"}, Mapped("cron", "0 9 * * 1-5", None)),
        ({"kind": "cron", "expr": "0 0 9 * * *"}, Mapped("cron", "0 9 * * *", None)),
        (
            {"kind": "cron", "expr": "@daily", "tz": "Asia/Tokyo"},
            Mapped("cron", "0 0 * * *", "Asia/Tokyo"),
        ),
        (
            {"kind": "at", "at": datetime(2030, 1, 1, tzinfo=UTC)},
            Mapped("once", "2030-01-01T00:00:00+00:00", None),
        ),
    ],
)
def test_mapped(kw: dict[str, object], expected: Mapped) -> None:
    assert map_schedule(job(**kw), NOW) == expected


@pytest.mark.parametrize(
    ("kw", "reason"),
    [
        ({"every_s": 2700}, "every 45 minutes has no crontab equivalent"),
        ({"every_s": 5 * 3600}, "every 5 hour(s) has no crontab equivalent"),
        ({"every_s": 90}, "every 90 seconds: Nexflow schedules at minute resolution"),
        ({"every_s": 86400}, "no time of day is known"),
        ({"every_s": 3 * 86400, "anchor": ANCHOR}, "every 3 day(s) has no crontab equivalent"),
        ({"kind": "cron", "expr": "*/10 * * * * *"}, "not a five-field crontab line"),
        ({"kind": "at", "at": datetime(2020, 1, 1, tzinfo=UTC)}, "has passed"),
        ({"kind": "at"}, "no time given"),
        ({"every_s": 60, "enabled": False}, "disabled in the source"),
        ({"every_s": 60, "command": "backup.sh"}, "runs a program (backup.sh)"),
        ({"every_s": 1800, "limited": "repeats 3 times"}, "repeats 3 times"),
    ],
)
def test_not_mapped(kw: dict[str, object], reason: str) -> None:
    result = map_schedule(job(**kw), NOW)
    assert isinstance(result, str)
    assert reason in result
