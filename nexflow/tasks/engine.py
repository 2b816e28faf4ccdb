"""APScheduler 3 and the SQLite job store, as :class:`~nexflow.tasks.service.ReminderService`
drives them.

The only module of ``nexflow.tasks`` that imports APScheduler (with ``jobstore`` and the
cron trigger in ``schedule``). The service imports it in a worker thread when it starts:
APScheduler's import reads the entry points of every installed distribution (~30 ms), and
the gateway answers ``/health`` meanwhile (docs/architecture.md, "Start-up").
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable, Coroutine
from datetime import datetime, tzinfo
from pathlib import Path
from typing import Any

from apscheduler.events import EVENT_SCHEDULER_SHUTDOWN
from apscheduler.executors.base import BaseExecutor
from apscheduler.job import Job
from apscheduler.jobstores.base import ConflictingIdError, JobLookupError
from apscheduler.schedulers.asyncio import AsyncIOScheduler
from apscheduler.triggers.date import DateTrigger

from nexflow.tasks.jobstore import SQLiteJobStore

STORE = "reminders"
EXECUTOR = "reminders"
JOB_FUNC = "nexflow.tasks.service:reminder_job"

FireFn = Callable[[Job, list[datetime]], Coroutine[Any, Any, None]]


class ReminderExecutor(BaseExecutor):  # type: ignore[misc]  # APScheduler 3 ships no types
    """Runs each due reminder as a task the service owns (and awaits on stop)."""

    def __init__(self, fire: FireFn) -> None:
        super().__init__()
        self._fire = fire
        self.tasks: set[asyncio.Task[None]] = set()

    def _do_submit_job(self, job: Job, run_times: list[datetime]) -> None:
        task = asyncio.get_running_loop().create_task(self._fire(job, list(run_times)))
        self.tasks.add(task)

        def done(t: asyncio.Task[None]) -> None:
            self.tasks.discard(t)
            if t.cancelled():
                self._run_job_error(job.id, asyncio.CancelledError())
            elif (exc := t.exception()) is not None:
                self._run_job_error(job.id, exc, exc.__traceback__)
            else:
                self._run_job_success(job.id, [])

        task.add_done_callback(done)


class Engine:
    """The job store and the scheduler. Build and :meth:`open` it in a worker thread,
    :meth:`start` it on the loop; ``add``, ``remove`` and the store's queries block
    (one short SQLite statement each), so the service runs them in a thread."""

    def __init__(self, db_path: Path, timezone: tzinfo, fire: FireFn) -> None:
        self.store = SQLiteJobStore(db_path)
        self.executor = ReminderExecutor(fire)
        self._timezone = timezone
        self._scheduler: AsyncIOScheduler | None = None

    def open(self) -> None:
        self.store.open()

    def start(self, on_shutdown: Callable[[], None]) -> None:
        """Start scheduling on the running loop; overdue reminders fire right away.
        ``on_shutdown`` is called once :meth:`shutdown` took effect (on the loop)."""
        scheduler = AsyncIOScheduler(
            timezone=self._timezone,
            jobstores={STORE: self.store},
            executors={EXECUTOR: self.executor},
            job_defaults={"coalesce": True, "misfire_grace_time": None, "max_instances": 1},
        )
        scheduler.add_listener(lambda _event: on_shutdown(), EVENT_SCHEDULER_SHUTDOWN)
        scheduler.start()
        self._scheduler = scheduler

    def shutdown(self) -> None:
        """Stop scheduling (on the loop's next turn) and close the store."""
        self._running().shutdown(wait=False)

    def add(self, rid: str, name: str, kwargs: dict[str, Any], trigger: Any) -> Job | None:
        """Schedule a reminder job; None when ``rid`` is taken."""
        try:
            return self._running().add_job(
                JOB_FUNC,
                trigger=trigger,
                id=rid,
                name=name,
                kwargs=kwargs,
                jobstore=STORE,
                executor=EXECUTOR,
            )
        except ConflictingIdError:
            return None

    def remove(self, rid: str) -> bool:
        """Unschedule a job; False when there is none (it fired or was removed meanwhile)."""
        try:
            self._running().remove_job(rid, STORE)
        except JobLookupError:
            return False
        return True

    def _running(self) -> AsyncIOScheduler:
        if self._scheduler is None:
            raise RuntimeError("the reminder engine is not started")
        return self._scheduler


async def drain(executor: ReminderExecutor, timeout_s: float) -> None:
    """Wait up to ``timeout_s`` for the fires still running, then cancel what is left."""
    tasks = set(executor.tasks)
    if not tasks:
        return
    _, pending = await asyncio.wait(tasks, timeout=timeout_s)
    for task in pending:
        task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await asyncio.gather(*pending, return_exceptions=True)


def date_trigger(when: datetime, tz: tzinfo) -> DateTrigger:
    return DateTrigger(run_date=when, timezone=tz)
