"""APScheduler 3 and its job store for flow triggers, as
:class:`~nexflow.gateway.flow_triggers.FlowTriggers` drives them.

The reminders' machinery (``nexflow.tasks``): the same SQLite job store (its own table,
``flow_trigger_jobs``, in the project database) and the same executor, which hands each
due job to a coroutine the service owns. Imported in a worker thread when the service
starts: APScheduler's import reads every installed distribution's entry points (~30 ms).
On Postgres the scheduler also looks in the shared table every ``wake_s`` seconds, so a
trigger another gateway scheduled (or one a dead gateway had claimed) fires here too
(``nexflow.tasks.engine.WakingScheduler``).
"""

from __future__ import annotations

from datetime import UTC
from pathlib import Path
from typing import Any

from apscheduler.job import Job

from nexflow.flows import triggers
from nexflow.tasks.engine import Engine, FireFn

TABLE = "flow_trigger_jobs"
JOB_FUNC = "nexflow.gateway.flow_triggers:flow_trigger_job"


class TriggerScheduler(Engine):
    """The reminders' engine with the flow triggers' table and job function. :meth:`open`
    in a worker thread, :meth:`start` (paused) on the loop, reconcile the stored jobs with
    the flow files, then :meth:`resume`: jobs due while the gateway was down are handed
    over only then. The grace window is ours (``FlowTriggers._fire``): the executor gets
    every coalesced due time, late or not, and decides."""

    def __init__(self, target: Path | str, fire: FireFn, *, wake_s: float = 5.0) -> None:
        super().__init__(
            target, UTC, fire, table=TABLE, job_func=JOB_FUNC, max_instances=4, wake_s=wake_s
        )

    def put(self, job_id: str, kwargs: dict[str, Any]) -> Job:
        """Schedule (or replace) a trigger's job; its next run is computed from now."""
        trigger = triggers.parse(str(kwargs["cron"]), str(kwargs["timezone"]))
        name = f"flow {kwargs['flow']} for {kwargs['user_id']}"
        job = self.add(job_id, name, kwargs, trigger, replace=True)
        assert job is not None  # replace_existing: never a conflict
        return job
