"""APScheduler 3 and its job store for flow triggers, as
:class:`~nexflow.gateway.flow_triggers.FlowTriggers` drives them.

The reminders' machinery (``nexflow.tasks``): the same SQLite job store (its own table,
``flow_trigger_jobs``, in the project database) and the same executor, which hands each
due job to a coroutine the service owns. Imported in a worker thread when the service
starts: APScheduler's import reads every installed distribution's entry points (~30 ms).
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC
from pathlib import Path
from typing import Any

from apscheduler.events import EVENT_SCHEDULER_SHUTDOWN
from apscheduler.job import Job
from apscheduler.jobstores.base import JobLookupError
from apscheduler.schedulers.asyncio import AsyncIOScheduler

from nexflow.flows import triggers
from nexflow.tasks.engine import FireFn, ReminderExecutor
from nexflow.tasks.jobstore import SQLiteJobStore

STORE = "flow-triggers"
EXECUTOR = "flow-triggers"
TABLE = "flow_trigger_jobs"
JOB_FUNC = "nexflow.gateway.flow_triggers:flow_trigger_job"


class TriggerScheduler:
    """The job store and the scheduler. :meth:`open` in a worker thread, :meth:`start`
    (paused) on the loop, reconcile the stored jobs with the flow files, then
    :meth:`resume`: jobs due while the gateway was down are handed over only then."""

    def __init__(self, db_path: Path, fire: FireFn) -> None:
        self.store = SQLiteJobStore(db_path, table=TABLE)
        self.executor = ReminderExecutor(fire)
        self._scheduler: AsyncIOScheduler | None = None

    def open(self) -> None:
        self.store.open()

    def start(self, on_shutdown: Callable[[], None]) -> None:
        scheduler = AsyncIOScheduler(
            timezone=UTC,
            jobstores={STORE: self.store},
            executors={EXECUTOR: self.executor},
            # the grace window is ours (FlowTriggers._fire): the executor gets every
            # coalesced due time, late or not, and decides
            job_defaults={"coalesce": True, "misfire_grace_time": None, "max_instances": 4},
        )
        scheduler.add_listener(lambda _event: on_shutdown(), EVENT_SCHEDULER_SHUTDOWN)
        scheduler.start(paused=True)
        self._scheduler = scheduler

    def resume(self) -> None:
        self._running().resume()

    def shutdown(self) -> None:
        self._running().shutdown(wait=False)

    def put(self, job_id: str, kwargs: dict[str, Any]) -> Job:
        """Schedule (or replace) a trigger's job; its next run is computed from now."""
        trigger = triggers.parse(str(kwargs["cron"]), str(kwargs["timezone"]))
        job: Job = self._running().add_job(
            JOB_FUNC,
            trigger=trigger,
            id=job_id,
            name=f"flow {kwargs['flow']} for {kwargs['user_id']}",
            kwargs=kwargs,
            jobstore=STORE,
            executor=EXECUTOR,
            replace_existing=True,
        )
        return job

    def remove(self, job_id: str) -> bool:
        try:
            self._running().remove_job(job_id, STORE)
        except JobLookupError:
            return False
        return True

    def _running(self) -> AsyncIOScheduler:
        if self._scheduler is None:
            raise RuntimeError("the flow trigger scheduler is not started")
        return self._scheduler
