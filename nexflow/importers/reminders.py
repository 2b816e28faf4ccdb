"""Cron jobs into Nexflow reminders (``nexflow/tasks``), written straight into the
reminder job store.

The gateway's :class:`~nexflow.tasks.ReminderService` cannot be used here: starting it
starts the scheduler, which fires every reminder that came due while the gateway was
down, and the import has nowhere to deliver them. Instead an APScheduler scheduler is
started *paused* on the same job store (``job_store_for``: SQLite or Postgres) with the
service's job defaults, store and executor names, job function and job kwargs
(:meth:`~nexflow.tasks.Reminder.job_kwargs`), so the jobs are exactly what
``ReminderService.add_once`` / ``add_cron`` would store, and nothing fires. A running
gateway only sees them after a restart (its scheduler does not re-read the store).

A dry run reads the table through a read-only connection (nothing is created or
migrated) and checks each crontab line with the service's own parser.
"""

from __future__ import annotations

import contextlib
import logging
import pickle
import secrets
import sqlite3
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, tzinfo
from pathlib import Path
from typing import TYPE_CHECKING, Any

from nexflow.importers.model import CronJob, ReportRow, Status
from nexflow.importers.schedules import Mapped
from nexflow.tasks import schedule
from nexflow.tasks.errors import ReminderError, ReminderInvalid
from nexflow.tasks.model import Reminder, ReminderTarget

if TYPE_CHECKING:
    from apscheduler.schedulers.base import BaseScheduler

log = logging.getLogger(__name__)
MAX_PER_USER = 50  # ReminderService's default
MAX_TEXT = 1000
Key = tuple[str, str, str, str, str]  # text, kind, schedule, channel, chat: "the same reminder"


@dataclass(frozen=True, slots=True)
class PlannedReminder:
    job: CronJob
    mapped: Mapped
    channel: str
    chat_id: str
    text: str
    source: str  # for the report
    note: str = ""  # e.g. "delivered to telegram:123 instead of slack"

    def key(self) -> Key:
        return (self.text, self.mapped.kind, self.spec(), self.channel, self.chat_id)

    def spec(self) -> str:
        if self.mapped.kind == "cron":
            return " ".join(self.mapped.spec.split())
        return datetime.fromisoformat(self.mapped.spec).isoformat()


def _key(r: Reminder) -> Key:
    return (r.text, r.kind, r.schedule, r.target.channel, r.target.chat_id)


def local_zone() -> tzinfo:
    """The zone ReminderService uses when none is given: the host's, else UTC."""
    try:
        from tzlocal import get_localzone

        return get_localzone()
    except Exception:  # no usable local zone on the host: UTC, as the service does
        log.warning("cannot determine the local time zone; using UTC", exc_info=True)
        return UTC


def write_reminders(
    db: Path | str,
    user_id: str,
    planned: Sequence[PlannedReminder],
    *,
    dry_run: bool,
    default_tz: tzinfo,
) -> list[ReportRow]:
    """Add each planned reminder for ``user_id`` unless an identical one exists.
    ``db``: the gateway's SQLite file or its ``storage.url`` (the reminders' job store).
    Blocking (the database, APScheduler): run it in a thread."""
    if not planned:
        return []
    if dry_run:
        seen = _read_only(db, user_id)
        rows = []
        for p in planned:
            rows.append(_row(p, *_check(p, seen, default_tz)))
            seen.add(p.key())
        return rows
    from nexflow.tasks.engine import STORE
    from nexflow.tasks.jobstore import job_store_for

    store = job_store_for(db)
    scheduler = _store_only_scheduler()(
        timezone=default_tz,
        jobstores={STORE: store},
        job_defaults={"coalesce": True, "misfire_grace_time": None, "max_instances": 1},
    )
    scheduler.start(paused=True)  # stores jobs, fires none
    try:
        existing = {
            _key(Reminder.from_job(j.id, j.kwargs, j.next_run_time)) for j in store.jobs_of(user_id)
        }
        rows = []
        for p in planned:
            status, reason = _check(p, existing, default_tz)
            if status == "would import":
                status, reason = _add(scheduler, store.count_of(user_id), user_id, p, default_tz)
                existing.add(p.key())
            rows.append(_row(p, status, reason))
        return rows
    finally:
        scheduler.shutdown(wait=False)


def _store_only_scheduler() -> type[BaseScheduler]:
    """A scheduler with no loop or thread of its own: it stores jobs and never runs one."""
    from apscheduler.schedulers.base import BaseScheduler

    class StoreOnly(BaseScheduler):  # type: ignore[misc]  # APScheduler 3 ships no types
        def wakeup(self) -> None:
            pass

        def shutdown(self, wait: bool = True) -> None:
            super().shutdown(wait)

    return StoreOnly


def _check(p: PlannedReminder, existing: set[Key], default_tz: tzinfo) -> tuple[Status, str]:
    """Whether ``p`` can be added (``would import``), and if not, why."""
    if p.key() in existing:
        return "unchanged", "the same reminder exists"
    if len(p.text) > MAX_TEXT:
        return "skipped", f"the text is over {MAX_TEXT} characters"
    try:
        _trigger(p, default_tz)
    except ReminderError as e:
        return "failed", e.message
    return "would import", p.note


def _trigger(p: PlannedReminder, default_tz: tzinfo) -> Any:
    tz = schedule.zone(p.mapped.timezone, default_tz)
    if p.mapped.kind == "cron":
        return schedule.cron_trigger(p.mapped.spec, tz)
    from nexflow.tasks.engine import date_trigger

    return date_trigger(datetime.fromisoformat(p.mapped.spec), tz)


def _add(
    scheduler: BaseScheduler,
    count: int,
    user_id: str,
    p: PlannedReminder,
    default_tz: tzinfo,
) -> tuple[Status, str]:
    from nexflow.tasks.engine import EXECUTOR, JOB_FUNC, STORE

    if count >= MAX_PER_USER:
        return "skipped", f"the owner already has {MAX_PER_USER} reminders"
    tz = schedule.zone(p.mapped.timezone, default_tz)
    reminder = Reminder(
        id="",
        target=ReminderTarget(user_id, p.channel, p.chat_id, ""),
        text=p.text,
        kind=p.mapped.kind,
        schedule=p.spec(),
        timezone=schedule.zone_name(tz),
        created_at=datetime.now(UTC),
        next_run=None,
    )
    from apscheduler.jobstores.base import ConflictingIdError

    for _ in range(5):
        rid = "r" + secrets.token_hex(4)
        try:
            job = scheduler.add_job(
                JOB_FUNC,
                trigger=_trigger(p, default_tz),
                id=rid,
                name=f"reminder for {user_id}",
                kwargs=reminder.job_kwargs(),
                jobstore=STORE,
                executor=EXECUTOR,
            )
        except ConflictingIdError:
            continue
        except ReminderInvalid as e:
            return "failed", e.message
        if job.next_run_time is None:
            scheduler.remove_job(rid, STORE)
            return "failed", f"{p.spec()!r} never fires"
        return "imported", p.note or f"reminder {rid}"
    return "failed", "could not allocate a reminder id"


def _read_only(db: Path | str, user_id: str) -> set[Key]:
    """This user's reminders, read without creating or migrating anything (on Postgres
    through the job store, whose table the gateway's migrations made)."""
    if isinstance(db, str) and not db.startswith("sqlite:///"):
        from nexflow.tasks.jobstore import job_store_for

        store = job_store_for(db)
        store.open()
        try:
            return {
                _key(Reminder.from_job(j.id, j.kwargs, j.next_run_time))
                for j in store.jobs_of(user_id)
            }
        finally:
            store.shutdown()
    db_path = Path(db.removeprefix("sqlite:///")) if isinstance(db, str) else db
    if not db_path.is_file():
        return set()
    found: set[Key] = set()
    with _readonly_connection(db_path) as conn:
        try:
            rows = conn.execute(
                "SELECT id, job_state FROM reminder_jobs WHERE user_id = ?", (user_id,)
            ).fetchall()
        except sqlite3.OperationalError:  # no table yet
            return found
    for job_id, blob in rows:
        try:  # only Nexflow writes this table (nexflow/tasks/jobstore.py)
            state = pickle.loads(blob)
            found.add(_key(Reminder.from_job(str(job_id), state["kwargs"], None)))
        except Exception:  # a job from another version: the gateway drops it, so do we
            log.warning("cannot read reminder job %s", job_id, exc_info=True)
    return found


@contextlib.contextmanager
def _readonly_connection(path: Path) -> Iterator[sqlite3.Connection]:
    conn = sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro&immutable=1", uri=True)
    try:
        yield conn
    finally:
        conn.close()


def _row(p: PlannedReminder, status: Status, reason: str) -> ReportRow:
    when = p.mapped.spec if p.mapped.kind == "once" else f"cron {p.mapped.spec}"
    dest = f"reminder {when} → {p.channel}:{p.chat_id}"
    return ReportRow("reminder", p.job.name, p.source, dest, status, reason)
