"""A source job's schedule as a Nexflow reminder schedule: a one-shot ISO time or a
five-field crontab line (``nexflow/tasks/schedule.py``), or the reason there is none.

Intervals become crontab lines only when the line repeats at exactly that interval:
N minutes when N divides 60, N hours when N divides 24, one day or one week (at the time
of day the job last ran or was next due). Anything else (every 45 minutes, every 5 hours,
every 30 seconds) is reported, not approximated.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from nexflow.importers.model import CronJob

_MACROS = {
    "@yearly": "0 0 1 1 *",
    "@annually": "0 0 1 1 *",
    "@monthly": "0 0 1 * *",
    "@weekly": "0 0 * * 0",
    "@daily": "0 0 * * *",
    "@midnight": "0 0 * * *",
    "@hourly": "0 * * * *",
}
_DAY = 24 * 60
_WEEK = 7 * _DAY


@dataclass(frozen=True, slots=True)
class Mapped:
    kind: Literal["once", "cron"]
    spec: str  # ISO time (once) or a crontab line (cron)
    timezone: str | None  # IANA name; None: the reminder service's zone


def map_schedule(job: CronJob, now: datetime) -> Mapped | str:
    """The reminder schedule for ``job``, or why it cannot have one."""
    if not job.enabled:
        return "disabled in the source"
    if job.command:
        return f"runs a program ({job.command[:60]}); Nexflow reminders only send a message"
    if job.kind == "at":
        if job.at is None:
            return "no time given for the one-shot job"
        if job.at <= now:
            return f"its time ({job.at.isoformat()}) has passed"
        return Mapped("once", job.at.isoformat(), None)
    if job.limited:
        return f"{job.limited}; Nexflow reminders repeat until cancelled"
    if job.kind == "cron":
        return _cron(job)
    return _every(job)


def _cron(job: CronJob) -> Mapped | str:
    expr = " ".join((job.expr or "").split())
    expr = _MACROS.get(expr.lower(), expr)
    fields = expr.split()
    if len(fields) == 6 and fields[0] == "0":
        fields = fields[1:]  # a leading seconds field at 0
    if len(fields) != 5:
        return f"cron {job.expr!r} is not a five-field crontab line"
    return Mapped("cron", " ".join(fields), job.tz)


def _every(job: CronJob) -> Mapped | str:
    seconds = job.every_s
    if seconds is None or seconds <= 0:
        return "no interval given"
    if seconds % 60:
        return f"every {seconds:g} seconds: Nexflow schedules at minute resolution"
    minutes = int(seconds // 60)
    if minutes < 60 and 60 % minutes == 0:
        return Mapped("cron", "* * * * *" if minutes == 1 else f"*/{minutes} * * * *", job.tz)
    if minutes < _DAY and minutes % 60 == 0 and 24 % (minutes // 60) == 0:
        hours = minutes // 60
        return Mapped("cron", "0 * * * *" if hours == 1 else f"0 */{hours} * * *", job.tz)
    if minutes in (_DAY, _WEEK):
        if job.anchor is None:
            return f"every {_span(minutes)}, but no time of day is known for it"
        zone = _zone(job.tz)
        local = job.anchor.astimezone(zone) if zone else job.anchor
        tz = job.tz if zone else "UTC"
        if minutes == _DAY:
            return Mapped("cron", f"{local.minute} {local.hour} * * *", tz)
        weekday = (local.weekday() + 1) % 7  # cron: 0 is Sunday
        return Mapped("cron", f"{local.minute} {local.hour} * * {weekday}", tz)
    return f"every {_span(minutes)} has no crontab equivalent"


def _zone(name: str | None) -> ZoneInfo | None:
    if not name:
        return None
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        return None


def _span(minutes: int) -> str:
    if minutes % _WEEK == 0:
        return f"{minutes // _WEEK} week(s)"
    if minutes % _DAY == 0:
        return f"{minutes // _DAY} day(s)"
    if minutes % 60 == 0:
        return f"{minutes // 60} hour(s)"
    return f"{minutes} minutes"
