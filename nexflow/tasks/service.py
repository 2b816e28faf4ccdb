"""``ReminderService``: one-shot and cron reminders delivered back to the chat they came from.

Built on APScheduler 3's ``AsyncIOScheduler`` with :class:`SQLiteJobStore`, so reminders
survive a restart. A fired reminder is handed to the injected ``deliver`` callback.

Start-up: :meth:`ReminderService.start` returns at once; a task it owns imports
APScheduler in a worker thread (``engine.py``: ~30 ms the gateway does not wait for),
opens the job store and starts the scheduler. Every operation waits for that task; if
it failed, the log has ``reminders_start_failed`` with the traceback and operations
raise :class:`ReminderUnavailable`.

Misfires: jobs are stored with ``coalesce=True`` and no grace limit, so a reminder whose
time passed while the gateway was down fires exactly once when it starts again (a cron
reminder that missed several runs fires once), and the text says it is late. The
service's own executor receives the scheduled run time, which is how it knows.

A one-shot is removed from the store when it is handed to the executor, before
``deliver`` returns: a crash in that window loses it (at-most-once). ``deliver`` only
has to enqueue the message durably, which takes milliseconds.

Several processes on one Postgres (docs/scale-out.md): every gateway runs a service on
the shared ``reminder_jobs`` table; a due reminder is claimed by one of them
(``jobstore.PostgresJobStore``), and each scheduler looks in the table at least every
``wake_s`` seconds, so a reminder another process added (or one a dead replica left)
fires within ``wake_s`` of its time. A worker's service is ``paused``: its scheduler
never fires; it adds, lists and cancels jobs in the table, and the gateways fire them.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import secrets
from datetime import UTC, datetime, timedelta, tzinfo
from pathlib import Path
from typing import TYPE_CHECKING, Any

from nexflow.tasks import schedule
from nexflow.tasks.errors import (
    ReminderInvalid,
    ReminderNotFound,
    ReminderRefused,
    ReminderUnavailable,
)
from nexflow.tasks.model import Budget, Deliver, Kind, Reminder, ReminderTarget

if TYPE_CHECKING:
    from apscheduler.job import Job

    from nexflow.tasks.engine import Engine

log = logging.getLogger(__name__)


def reminder_job(**_: Any) -> None:
    """The job's callable reference. Reminder jobs run through the service's executor,
    which reads the job's kwargs instead of calling this."""
    raise RuntimeError("reminder jobs are run by ReminderService, not called directly")


class ReminderService:
    """Schedules reminders and delivers them. One per gateway, built by the composition root.

    ``target`` is the gateway's database: its SQLite file or its ``storage.url`` (the
    ``reminder_jobs`` table, migration 3).
    ``deliver(channel, chat_id, session_id, text)`` sends a fired reminder; ``budget``
    (optional) may refuse an ``add`` or a ``fire`` for a user. ``timezone`` is used for
    times without an offset and for cron lines when the caller names none.
    ``wake_s`` (Postgres only): the longest sleep between two looks at the shared table
    (``replicas.scheduler_wake_s``). ``paused``: never fire (a worker's service; see the
    module docstring).
    """

    def __init__(
        self,
        target: Path | str,
        deliver: Deliver,
        *,
        timezone: tzinfo | None = None,
        budget: Budget | None = None,
        max_per_user: int = 50,
        max_text: int = 1000,
        late_after: timedelta = timedelta(minutes=1),
        stop_timeout: float = 5.0,
        wake_s: float = 5.0,
        paused: bool = False,
    ) -> None:
        self._deliver = deliver
        self._budget = budget
        self.timezone: tzinfo = timezone or _local_zone()
        self._max_per_user = max_per_user
        self._max_text = max_text
        self._late_after = late_after
        self._stop_timeout = stop_timeout
        self._target = target
        self._wake_s = wake_s
        self._paused = paused
        self._loading: asyncio.Task[Engine | None] | None = None
        self._engine: Engine | None = None
        self._stopped = asyncio.Event()

    # -- lifecycle ---------------------------------------------------------------------

    async def start(self) -> None:
        """Launch the start-up task and return at once: it opens the store and starts
        the scheduler (overdue reminders fire then); operations wait for it."""
        if self._loading is not None:
            return
        self._stopped.clear()
        self._loading = asyncio.create_task(self._load(), name="nexflow-reminders-start")

    async def stop(self) -> None:
        """Stop scheduling, let reminders being delivered finish, close the store. A
        start-up still running is waited for first (it takes milliseconds)."""
        loading, self._loading = self._loading, None
        if loading is None:
            return
        engine = await loading
        self._engine = None
        if engine is None:
            return
        engine.shutdown()  # runs on the loop's next turn
        await self._stopped.wait()
        from nexflow.tasks.engine import drain  # loaded with the scheduler

        await drain(engine.executor, self._stop_timeout)

    @property
    def running(self) -> bool:
        return self._engine is not None

    async def ready(self) -> None:
        """Wait until the scheduler runs; :class:`ReminderUnavailable` if it could not
        start, ``RuntimeError`` if the service is not started."""
        await self._running()

    async def _load(self) -> Engine | None:
        try:
            engine = await asyncio.to_thread(self._open_engine)
            engine.start(self._stopped.set, paused=self._paused)
        except Exception:
            log.exception("reminders_start_failed")
            return None
        self._engine = engine
        return engine

    def _open_engine(self) -> Engine:  # in a worker thread: APScheduler is imported here
        from nexflow.tasks.engine import Engine

        engine = Engine(self._target, self.timezone, self._fire, wake_s=self._wake_s)
        engine.open()
        return engine

    # -- API -----------------------------------------------------------------------------

    async def add_once(
        self,
        target: ReminderTarget,
        text: str,
        at: datetime,
        *,
        timezone: str | None = None,
        idempotency_key: str | None = None,
    ) -> Reminder:
        """A reminder that fires once at ``at`` (naive times are read in the zone).
        ``idempotency_key`` (a flow step's): the same user and key add it once."""
        tz = schedule.zone(timezone, self.timezone)
        when = at.replace(tzinfo=tz) if at.tzinfo is None else at
        if when <= datetime.now(UTC) - timedelta(seconds=1):
            raise ReminderInvalid(
                f"{schedule.describe(when, tz)} is in the past; give a future time"
            )
        engine = await self._running()
        from nexflow.tasks.engine import date_trigger  # loaded by now: no import on the loop

        trigger = date_trigger(when, tz)
        return await self._add(
            engine, target, text, "once", when.isoformat(), tz, trigger, idempotency_key
        )

    async def add_in(
        self,
        target: ReminderTarget,
        text: str,
        delay: timedelta,
        *,
        timezone: str | None = None,
        idempotency_key: str | None = None,
    ) -> Reminder:
        if delay <= timedelta(0):
            raise ReminderInvalid("the delay must be positive")
        return await self.add_once(
            target,
            text,
            datetime.now(UTC) + delay,
            timezone=timezone,
            idempotency_key=idempotency_key,
        )

    async def add_cron(
        self,
        target: ReminderTarget,
        text: str,
        cron: str,
        *,
        timezone: str | None = None,
        allow_seconds: bool = False,
        idempotency_key: str | None = None,
    ) -> Reminder:
        """A repeating reminder from a crontab line (weekday 0 = Sunday, as in cron)."""
        tz = schedule.zone(timezone, self.timezone)
        engine = await self._running()  # the cron trigger's module is loaded by then
        trigger = schedule.cron_trigger(cron, tz, allow_seconds=allow_seconds)
        spec = " ".join(cron.split())
        return await self._add(engine, target, text, "cron", spec, tz, trigger, idempotency_key)

    async def list_for(self, user_id: str) -> list[Reminder]:
        """This user's reminders, soonest first."""
        engine = await self._running()
        jobs = await asyncio.to_thread(engine.store.jobs_of, user_id)
        return [Reminder.from_job(j.id, j.kwargs, j.next_run_time) for j in jobs]

    async def cancel(self, user_id: str, reminder_id: str) -> Reminder:
        """Remove one of this user's reminders; another user's id is 'not found'."""
        engine = await self._running()
        job = await asyncio.to_thread(engine.store.lookup_job, reminder_id)
        if job is None or job.kwargs.get("user_id") != user_id:
            raise ReminderNotFound(f"you have no reminder {reminder_id!r}")
        if not await asyncio.to_thread(engine.remove, reminder_id):
            # it fired (or was cancelled) meanwhile
            raise ReminderNotFound(f"you have no reminder {reminder_id!r}")
        return Reminder.from_job(job.id, job.kwargs, job.next_run_time)

    # -- internals ---------------------------------------------------------------------

    async def _running(self) -> Engine:
        loading = self._loading
        if loading is None:
            raise RuntimeError("ReminderService is not started")
        engine = await asyncio.shield(loading)  # a cancelled caller leaves the start-up be
        if engine is None:
            raise ReminderUnavailable(
                "reminders are unavailable: the scheduler could not start (see the gateway log)"
            )
        return engine

    async def _add(
        self,
        engine: Engine,
        target: ReminderTarget,
        text: str,
        kind: Kind,
        spec: str,
        tz: tzinfo,
        trigger: Any,
        idempotency_key: str | None = None,
    ) -> Reminder:
        keyed = _reminder_id(target.user_id, idempotency_key) if idempotency_key else None
        if keyed is not None:
            job = await asyncio.to_thread(engine.store.lookup_job, keyed)
            if job is not None and job.kwargs.get("user_id") == target.user_id:
                return Reminder.from_job(job.id, job.kwargs, job.next_run_time)  # added once
        text = text.strip()
        if not text:
            raise ReminderInvalid("the reminder text is empty")
        if len(text) > self._max_text:
            raise ReminderInvalid(f"the reminder text is over {self._max_text} characters")
        if await asyncio.to_thread(engine.store.count_of, target.user_id) >= self._max_per_user:
            raise ReminderRefused(
                f"you already have {self._max_per_user} reminders; cancel some first"
            )
        if self._budget is not None and (why := await self._budget(target.user_id, "add")):
            raise ReminderRefused(why)
        draft = Reminder(
            id="",
            target=target,
            text=text,
            kind=kind,
            schedule=spec,
            timezone=schedule.zone_name(tz),
            created_at=datetime.now(UTC),
            next_run=None,
        )
        for _ in range(1 if keyed else 5):
            rid = keyed or "r" + secrets.token_hex(4)
            job = await asyncio.to_thread(
                engine.add, rid, f"reminder for {target.user_id}", draft.job_kwargs(), trigger
            )
            if job is None:  # the id is taken
                continue
            if job.next_run_time is None:
                await asyncio.to_thread(engine.remove, rid)
                raise ReminderInvalid(f"{spec!r} never fires")
            log.info("reminder %s added for %s (%s %s)", rid, target.user_id, kind, spec)
            return Reminder.from_job(rid, job.kwargs, job.next_run_time)
        if keyed is not None:  # added meanwhile by the same step, or a fired one-off
            raise ReminderRefused("this step's reminder was already added")
        raise RuntimeError("could not allocate a reminder id")

    async def _fire(self, job: Job, run_times: list[datetime]) -> None:
        reminder = Reminder.from_job(job.id, job.kwargs, None)
        target = reminder.target
        due = run_times[-1]
        if self._budget is not None and (why := await self._budget(target.user_id, "fire")):
            log.warning("reminder %s for %s not delivered: %s", job.id, target.user_id, why)
            return
        late = datetime.now(UTC) - due > self._late_after
        tz = schedule.zone(reminder.timezone, self.timezone)
        if late:
            text = (
                f"⏰ Reminder (late: it was due {schedule.describe(due, tz)}, "
                f"while Nexflow was offline): {reminder.text}"
            )
        else:
            text = f"⏰ Reminder: {reminder.text}"
        try:
            await self._deliver(target.channel, target.chat_id, target.session_id, text)
        except Exception:
            log.exception("delivering reminder %s to %s failed", job.id, target.channel)
            return
        log.info("reminder %s delivered (late=%s)", job.id, late)


def _local_zone() -> tzinfo:
    try:
        from tzlocal import get_localzone

        return get_localzone()
    except Exception:  # no usable local zone configured on the host: UTC
        log.warning("cannot determine the local time zone; reminders use UTC", exc_info=True)
        return UTC


def _reminder_id(user_id: str, key: str) -> str:
    """A reminder id derived from its user and an idempotency key (as random ids: r + 8 hex)."""
    return "r" + hashlib.sha256(f"{user_id}\0{key}".encode()).hexdigest()[:8]
