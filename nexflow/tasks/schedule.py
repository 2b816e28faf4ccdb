"""Turning what the user said (a time, "in N minutes", a crontab line) into triggers."""

from __future__ import annotations

import re
from datetime import datetime, tzinfo
from typing import TYPE_CHECKING
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from nexflow.tasks.errors import ReminderInvalid

if TYPE_CHECKING:
    from apscheduler.triggers.cron import CronTrigger

_DOW_NAMES = ("sun", "mon", "tue", "wed", "thu", "fri", "sat", "sun")
_DOW_NUMBER = re.compile(r"(?<![/\d])([0-7])(?!\d)")


def zone(name: str | None, default: tzinfo) -> tzinfo:
    """An IANA zone by name, or ``default`` when no name is given."""
    if not name:
        return default
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError) as e:
        raise ReminderInvalid(
            f"unknown time zone {name!r}; use an IANA name like Europe/Berlin"
        ) from e


def zone_name(tz: tzinfo) -> str:
    return getattr(tz, "key", None) or str(tz)


def parse_at(text: str, tz: tzinfo) -> datetime:
    """An ISO 8601 date-time; without an offset it is read in ``tz``."""
    try:
        when = datetime.fromisoformat(text.strip().replace("Z", "+00:00"))
    except ValueError as e:
        raise ReminderInvalid(
            f"cannot read the time {text!r}; use ISO 8601, e.g. 2025-06-01T09:00"
        ) from e
    return when.replace(tzinfo=tz) if when.tzinfo is None else when


def cron_trigger(expr: str, tz: tzinfo, *, allow_seconds: bool = False) -> CronTrigger:
    """A trigger for a standard crontab line ``minute hour day month weekday``.

    Weekday numbers follow cron (0 and 7 are Sunday), not APScheduler 3 (0 is Monday);
    names (``mon-fri``) work too. With ``allow_seconds`` a sixth, leading seconds field is
    accepted (used by tests; the model only gets minute resolution).
    """
    fields = expr.split()
    seconds = "0"
    if allow_seconds and len(fields) == 6:
        seconds, fields = fields[0], fields[1:]
    if len(fields) != 5:
        raise ReminderInvalid(
            f"cron {expr!r} must have 5 fields: minute hour day month weekday "
            "(e.g. '0 9 * * 1-5' for 09:00 on weekdays)"
        )
    minute, hour, day, month, dow = fields
    dow = _DOW_NUMBER.sub(lambda m: _DOW_NAMES[int(m.group(1))], dow)
    from apscheduler.triggers.cron import CronTrigger  # off the start-up path (engine.py)

    try:
        return CronTrigger(
            second=seconds,
            minute=minute,
            hour=hour,
            day=day,
            month=month,
            day_of_week=dow,
            timezone=tz,
        )
    except ValueError as e:
        raise ReminderInvalid(f"invalid cron expression {expr!r}: {e}") from e


def describe(when: datetime | None, tz: tzinfo) -> str:
    if when is None:
        return "now"
    return when.astimezone(tz).strftime("%Y-%m-%d %H:%M %Z")
