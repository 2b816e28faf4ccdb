"""APScheduler 3 and the SQLite job store, as :class:`~nexflow.tasks.service.ReminderService`
drives them.

APScheduler sleeps until the next run time of the jobs it knows, and only its own
``add_job`` wakes it sooner. On a shared (Postgres) job store other processes add jobs
too (another gateway, a worker's paused service, a replica that died with a claim on a
due job), so there the scheduler also wakes at least every ``wake_s`` seconds
(``replicas.scheduler_wake_s``) to look in the shared table: :class:`WakingScheduler`.
On SQLite one process owns the file and nothing changes.

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
from apscheduler.schedulers.base import STATE_RUNNING
from apscheduler.triggers.date import DateTrigger

from nexflow.tasks.jobstore import job_store_for

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


class WakingScheduler(AsyncIOScheduler):  # type: ignore[misc]  # APScheduler 3 ships no types
    """An ``AsyncIOScheduler`` that, while running, waits at most ``wake_s`` seconds
    between two looks at its job stores, jobs or none: it finds the jobs other processes
    added to a shared table. Each look is two short statements (claim the due rows, read
    the earliest next run time); their cost is in docs/benchmarks.md ("Scale-out")."""

    def __init__(self, wake_s: float, **options: Any) -> None:
        if not wake_s > 0:
            raise ValueError("wake_s must be positive")
        self.wake_s = wake_s
        super().__init__(**options)

    def _process_jobs(self) -> float | None:
        wait: float | None = super()._process_jobs()
        if self.state != STATE_RUNNING:  # paused (a worker's service) or stopping: no look
            return wait
        return self.wake_s if wait is None else min(wait, self.wake_s)


class Engine:
    """The job store and the scheduler. Build and :meth:`open` it in a worker thread,
    :meth:`start` it on the loop; ``add``, ``remove`` and the store's queries block
    (one short statement each, on SQLite or Postgres), so the service runs them in a
    thread.

    Reminders use it as it is; flow triggers (``nexflow.gateway.flow_schedule``) with
    their own table, job function and limits. ``wake_s``: on a shared job store
    (Postgres), the longest sleep between two looks at the table (module docstring);
    ignored on SQLite."""

    def __init__(
        self,
        target: Path | str,
        timezone: tzinfo,
        fire: FireFn,
        *,
        table: str = "reminder_jobs",
        job_func: str = JOB_FUNC,
        max_instances: int = 1,
        wake_s: float = 5.0,
    ) -> None:
        self.store = job_store_for(target, table=table)
        self.wake_s = wake_s if self.store.shared else None
        self.executor = ReminderExecutor(fire)
        self._timezone = timezone
        self._job_func = job_func
        self._max_instances = max_instances
        self._scheduler: AsyncIOScheduler | None = None

    def open(self) -> None:
        self.store.open()

    def start(self, on_shutdown: Callable[[], None], *, paused: bool = False) -> None:
        """Start scheduling on the running loop; overdue jobs fire right away (once
        :meth:`resume` is called, when ``paused``). ``on_shutdown`` is called once
        :meth:`shutdown` took effect (on the loop)."""
        options: dict[str, Any] = {
            "timezone": self._timezone,
            "jobstores": {STORE: self.store},
            "executors": {EXECUTOR: self.executor},
            "job_defaults": {
                "coalesce": True,
                "misfire_grace_time": None,
                "max_instances": self._max_instances,
            },
        }
        scheduler = (
            AsyncIOScheduler(**options)
            if self.wake_s is None
            else WakingScheduler(self.wake_s, **options)
        )
        scheduler.add_listener(lambda _event: on_shutdown(), EVENT_SCHEDULER_SHUTDOWN)
        scheduler.start(paused=paused)
        self._scheduler = scheduler

    def resume(self) -> None:
        self._running().resume()

    def shutdown(self) -> None:
        """Stop scheduling (on the loop's next turn) and close the store."""
        self._running().shutdown(wait=False)

    def add(
        self, rid: str, name: str, kwargs: dict[str, Any], trigger: Any, *, replace: bool = False
    ) -> Job | None:
        """Schedule a job; None when ``rid`` is taken (``replace``: it is replaced)."""
        try:
            return self._running().add_job(
                self._job_func,
                trigger=trigger,
                id=rid,
                name=name,
                kwargs=kwargs,
                jobstore=STORE,
                executor=EXECUTOR,
                replace_existing=replace,
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
            raise RuntimeError("the scheduler is not started")
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
