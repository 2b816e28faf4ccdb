"""Cron triggers of a flow: parsing, the next fire time and the id of a fire's run.

A flow may declare ``triggers: [{cron: "0 9 * * 1-5", timezone: Europe/Moscow, args:
{...}}]``. The cron line is standard (``minute hour day month weekday``, weekday 0 or 7 =
Sunday) or has a sixth, leading seconds field. The gateway schedules them
(:mod:`nexflow.gateway.flow_triggers`); this module only knows the rules, so the loader
can refuse a bad line at load time.

APScheduler's cron trigger is imported only when a flow has triggers (in
:func:`parse`): loading a flow without triggers imports no APScheduler.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any
from zoneinfo import ZoneInfo

from nexflow.tasks import schedule
from nexflow.tasks.errors import ReminderError

if TYPE_CHECKING:
    from apscheduler.triggers.cron import CronTrigger


def check_zone(name: str) -> str:
    """``name`` if it is an IANA time zone; ``ValueError`` with a hint otherwise."""
    try:
        schedule.zone(name, UTC)
    except ReminderError as e:
        raise ValueError(e.message) from e
    return name


def parse(cron: str, timezone: str) -> CronTrigger:
    """APScheduler's trigger for a cron line in ``timezone``; ``ValueError`` if invalid."""
    try:
        return schedule.cron_trigger(cron, ZoneInfo(check_zone(timezone)), allow_seconds=True)
    except ReminderError as e:
        raise ValueError(
            e.message.replace("must have 5 fields", "must have 5 fields (or 6, seconds first)")
        ) from e


def next_fire(cron: str, timezone: str, after: datetime | None = None) -> datetime | None:
    """When the trigger fires next after ``after`` (now by default); None if never."""
    now = after or datetime.now(UTC)
    when: datetime | None = parse(cron, timezone).get_next_fire_time(None, now)
    return when


def fire_run_id(owner: str, flow: str, args: Mapping[str, Any], due: datetime) -> str:
    """The run id of one fire: the flow, the scheduled time (UTC, to the second) and a
    digest of the owner and the arguments. The same fire always gets the same id, so it
    starts at most once (the engine's start is idempotent by run id) however often it is
    scheduled or replayed after a restart."""
    stamp = due.astimezone(UTC).strftime("%Y%m%dT%H%M%SZ")
    digest = hashlib.sha256(
        json.dumps([owner, flow, dict(args)], sort_keys=True, default=str).encode()
    ).hexdigest()[:12]
    return f"cron-{flow}-{stamp}-{digest}"
