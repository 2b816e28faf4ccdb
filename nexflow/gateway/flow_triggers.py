"""``FlowTriggers``: runs flows on their cron triggers (``docs/flows.md``, "Triggers").

One job per trigger in a persistent APScheduler job store (table ``flow_trigger_jobs``,
:mod:`nexflow.gateway.flow_schedule`), keyed by owner, flow and the trigger's position.
The flow files are the truth; the store only remembers each trigger's next fire time, so
a restart neither repeats a fire nor forgets one that was due meanwhile:

- **Start-up.** :meth:`FlowTriggers.start` returns at once; a task it owns imports
  APScheduler in a thread, opens the store, starts the scheduler *paused*, reconciles
  every known owner's jobs with their flow files, then resumes it. Never on the gateway's
  start-up path.
- **Reconciling.** :meth:`sync` (an owner's whole set of flows, from listing them or at
  start) and :meth:`update` (one flow, when it is saved) add the jobs of new triggers,
  replace changed ones (their next fire counted from now) and remove the jobs of
  triggers and flows that are gone. A flow file that does not validate keeps its jobs;
  their fires are refused and logged until it is fixed.
- **Firing.** A due job starts a run through :meth:`FlowService.start` as the flow's
  owner (their tools, their budget gate, the default token cap), with the run id
  :func:`nexflow.flows.triggers.fire_run_id` of the flow and the scheduled time: the
  engine starts an id once, so a fire seen twice (two schedules, a restart mid-fire)
  still makes one run. The ``budget`` hook (the background budget, like reminders) may
  refuse a fire.
- **Several gateways** (Postgres): each runs a scheduler on the shared table; a due job
  is claimed by one, and each looks in the table every ``wake_s`` seconds
  (``replicas.scheduler_wake_s``), so a trigger scheduled by another gateway fires
  within ``wake_s`` of its time even if this one knew of no job.
- **Missed fires.** Fires missed while the gateway was down are coalesced into the
  latest one, which runs on start when it is at most ``grace_s`` late; an older one is
  skipped and logged (``flow_trigger_missed``).

Errors are logged, never raised into the scheduler: a fire of a flow that is gone
removes its jobs.
"""

from __future__ import annotations

import asyncio
import hashlib
from collections.abc import Awaitable, Callable, Collection, Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import structlog

from nexflow.flows.errors import FlowError
from nexflow.flows.host import Origin
from nexflow.flows.model import Flow
from nexflow.flows.triggers import fire_run_id
from nexflow.gateway.flow_host import FlowNotFound

if TYPE_CHECKING:
    from apscheduler.job import Job

    from nexflow.gateway.flow_schedule import TriggerScheduler
    from nexflow.gateway.flows import FlowService

log = structlog.get_logger("nexflow.flows.triggers")
Budget = Callable[[str, str], Awaitable[str | None]]


def flow_trigger_job(**_: Any) -> None:
    """The jobs' callable reference; FlowTriggers' executor runs them instead."""
    raise RuntimeError("flow trigger jobs are run by FlowTriggers, not called directly")


def job_id(owner: str, flow: str, index: int) -> str:
    digest = hashlib.sha256(owner.encode()).hexdigest()[:16]
    return f"flow:{digest}:{flow}:{index}"


class FlowTriggers:
    """Schedules the cron triggers of every user's flows; see the module docstring."""

    def __init__(
        self,
        target: Path | str,
        flows: FlowService,
        *,
        grace_s: float = 3600.0,
        budget: Budget | None = None,
        stop_timeout: float = 5.0,
        wake_s: float = 5.0,
    ) -> None:
        self._target = target
        self._wake_s = wake_s
        self._flows = flows
        self._grace_s = grace_s
        self._budget = budget
        self._stop_timeout = stop_timeout
        self._loading: asyncio.Task[TriggerScheduler | None] | None = None
        self._stopped = asyncio.Event()

    # -- lifecycle ---------------------------------------------------------------------

    async def start(self) -> None:
        """Launch the start-up task and return at once (see the module docstring)."""
        if self._loading is None:
            self._stopped.clear()
            self._loading = asyncio.create_task(self._load(), name="nexflow-flow-triggers")

    async def ready(self) -> bool:
        """Wait for the start-up; False if the scheduler could not start."""
        return await self._scheduler() is not None

    async def stop(self) -> None:
        """Stop scheduling; fires being started get ``stop_timeout`` to finish."""
        loading, self._loading = self._loading, None
        if loading is None:
            return
        sched = await loading
        if sched is None:
            return
        sched.shutdown()  # on the loop's next turn
        await self._stopped.wait()
        from nexflow.tasks.engine import drain  # loaded with the scheduler

        await drain(sched.executor, self._stop_timeout)

    async def _load(self) -> TriggerScheduler | None:
        try:
            sched = await asyncio.to_thread(self._open)
            sched.start(self._stopped.set, paused=True)
        except Exception:
            log.exception("flow_triggers_start_failed")
            return None
        try:
            for owner in await asyncio.to_thread(sched.store.owners):
                await self._reconcile_owner(sched, owner)
        except Exception:  # keep the stored schedule: fires of missing flows clean up
            log.exception("flow_triggers_reconcile_failed")
        sched.resume()
        return sched

    def _open(self) -> TriggerScheduler:  # in a worker thread: APScheduler is imported here
        from nexflow.gateway.flow_schedule import TriggerScheduler

        sched = TriggerScheduler(self._target, self._fire, wake_s=self._wake_s)
        sched.open()
        return sched

    async def _scheduler(self) -> TriggerScheduler | None:
        if self._loading is None:
            return None
        return await asyncio.shield(self._loading)

    async def _reconcile_owner(self, sched: TriggerScheduler, owner: str) -> None:
        try:
            valid, invalid = await self._flows.flows_of(owner)
        except FlowError as exc:
            log.warning("flow_triggers_owner_skipped", owner=owner, reason=exc.message)
            return
        await self._apply(sched, owner, valid, invalid, None)

    # -- API ---------------------------------------------------------------------------

    async def sync(self, owner: str, valid: Mapping[str, Flow], invalid: Collection[str]) -> None:
        """Make the owner's jobs match their flows: ``valid`` is every flow that loads,
        ``invalid`` the names of files that do not (their jobs are kept)."""
        sched = await self._scheduler()
        if sched is not None:
            await self._apply(sched, owner, valid, invalid, None)

    async def update(self, owner: str, name: str, flow: Flow | None) -> None:
        """One flow was saved (``flow``) or is gone (None)."""
        sched = await self._scheduler()
        if sched is not None:
            await self._apply(sched, owner, {name: flow} if flow else {}, (), name)

    async def next_runs(self, owner: str) -> dict[str, datetime]:
        """The next scheduled fire of each of the owner's flows that has triggers."""
        sched = await self._scheduler()
        if sched is None:
            return {}
        out: dict[str, datetime] = {}
        for job in await asyncio.to_thread(sched.store.jobs_of, owner):
            name, when = str(job.kwargs["flow"]), job.next_run_time
            if when is not None and (name not in out or when < out[name]):
                out[name] = when
        return out

    async def _apply(
        self,
        sched: TriggerScheduler,
        owner: str,
        valid: Mapping[str, Flow],
        invalid: Collection[str],
        only: str | None,
    ) -> None:
        wanted: dict[str, dict[str, Any]] = {}
        for name, flow in valid.items():
            for i, trigger in enumerate(flow.triggers):
                wanted[job_id(owner, name, i)] = {
                    "user_id": owner,
                    "flow": name,
                    "index": i,
                    "cron": trigger.cron,
                    "timezone": trigger.timezone,
                    "args": dict(trigger.args),
                }
        jobs = await asyncio.to_thread(sched.store.jobs_of, owner)
        have = {j.id: j for j in jobs if only is None or j.kwargs.get("flow") == only}
        for jid, job in have.items():
            if jid not in wanted and job.kwargs.get("flow") not in invalid:
                await asyncio.to_thread(sched.remove, jid)
                log.info("flow_trigger_removed", owner=owner, flow=job.kwargs.get("flow"))
        for jid, kwargs in wanted.items():
            old = have.get(jid)
            if old is not None and _spec(old.kwargs) == _spec(kwargs):
                continue
            job = await asyncio.to_thread(sched.put, jid, kwargs)
            log.info(
                "flow_trigger_scheduled",
                owner=owner,
                flow=kwargs["flow"],
                cron=kwargs["cron"],
                next_run=job.next_run_time.isoformat() if job.next_run_time else None,
            )

    # -- firing ------------------------------------------------------------------------

    async def _fire(self, job: Job, run_times: list[datetime]) -> None:
        owner, name = str(job.kwargs["user_id"]), str(job.kwargs["flow"])
        args: dict[str, Any] = dict(job.kwargs.get("args") or {})
        due = run_times[-1]
        late_s = (datetime.now(UTC) - due).total_seconds()
        if late_s > self._grace_s:
            log.warning(
                "flow_trigger_missed",
                owner=owner,
                flow=name,
                due=due.isoformat(),
                late_s=round(late_s),
                grace_s=self._grace_s,
            )
            return
        if self._budget is not None and (why := await self._budget(owner, "fire")):
            log.warning("flow_trigger_refused", owner=owner, flow=name, reason=why)
            return
        run_id = fire_run_id(owner, name, args, due)
        try:
            await self._flows.start(owner, name, args, Origin(), run_id=run_id)
        except FlowNotFound:
            log.info("flow_trigger_flow_gone", owner=owner, flow=name)
            await self.update(owner, name, None)
            return
        except FlowError as exc:
            log.warning("flow_trigger_failed", owner=owner, flow=name, reason=exc.message)
            return
        log.info("flow_trigger_fired", owner=owner, flow=name, run=run_id, late_s=round(late_s))


def _spec(kwargs: Mapping[str, Any]) -> tuple[Any, ...]:
    return (kwargs.get("flow"), kwargs.get("cron"), kwargs.get("timezone"), kwargs.get("args"))
