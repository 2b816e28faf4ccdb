"""``FlowEngine``: start, watch and steer durable flow runs on DBOS.

One engine per gateway. DBOS is imported and launched on first use (importing it costs
~0.5 s) and destroyed by :meth:`FlowEngine.close`; a second engine in the same process
is refused with :class:`EngineUnavailable` until the first is closed (DBOS is a
process-wide singleton: sharing it would mix two hosts' runs).

Runs go through one DBOS queue (``nexflow-flows-by-owner``) with a global concurrency limit and,
optionally, a per-owner one: the queue is partitioned by owner (every run is enqueued
with its owner as DBOS's partition key) with ``per_user_concurrency`` as DBOS's
``partition_concurrency``, so a user's runs past their limit stay queued in the database
(surviving restarts) while other users' runs start. Priorities are ours 1-5 (5 = most
urgent) mapped to DBOS's "lower runs first" as ``6 - priority``. The executor id must
stay stable across restarts: DBOS resumes a killed process's runs when an executor with
the same id launches again.

``listen=False`` (a gateway with ``flows.run_on: workers``) enqueues runs and steers them
but dequeues none of the flows queues (``DBOS.listen_queues([])``): ``nexflow worker``
processes on the same database run them (:mod:`nexflow.worker`). DBOS's own internal
queue is polled by every executor whatever it listens to, and that is where DBOS puts a
recovered workflow that was started directly rather than queued (a node workflow, a
sub-flow) and a resumed node: an enqueue-only engine pins its process's internal queue
at ``worker_concurrency=0`` (:func:`_internal_queue`), so a dead worker's node steps
resume on a worker, never on a gateway. On Postgres every engine holds its executor's presence lock
(:mod:`nexflow.flows.executors`) so workers can sweep the runs of executors that died
and never came back (:meth:`FlowEngine.recover`).

The system database (``database_url``) is ``flows.database_url``, else the gateway's own
Postgres database when ``storage.url`` is Postgres, else ``<home>/flows.sqlite3``
(:meth:`~nexflow.config.model.FlowsConfig.database_for`). On Postgres DBOS keeps its
tables in a schema of its own (``dbos``), which it creates and migrates on launch under
its own advisory lock, so it never touches the gateway's tables: the database role needs
``CREATE`` on the database for that first launch. DBOS also looks for the database
through the ``postgres`` maintenance database and creates it when missing; without access
there it only logs a warning. Replicas share the schema and its queue, each with its own
executor id (``flows.executor_id``, derived from its home).
"""

from __future__ import annotations

import asyncio
import importlib
import logging
import re
import sqlite3
import uuid
from collections.abc import Collection, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from types import ModuleType
from typing import TYPE_CHECKING, Any, Literal

from nexflow.flows.errors import EngineUnavailable, RunControlError, RunFailed, RunNotFound
from nexflow.flows.executors import ExecutorPresence, is_postgres
from nexflow.flows.host import FlowHost, Origin, RunInfo
from nexflow.flows.model import Flow, bind_inputs
from nexflow.flows.status import (
    CONTROL_ATTR,
    FLOW_ATTR,
    OWNER_ATTR,
    RunStats,
    RunStatus,
    RunSummary,
    dbos_priority,
)

if TYPE_CHECKING:
    from nexflow.flows.reader import RunReader

QUEUE = "nexflow-flows-by-owner"  # partitioned by owner (per_user_concurrency)
# Runs queued before the queue was partitioned carry no partition key, and a partitioned
# queue never starts those: this queue keeps taking them (nothing new is put on it).
LEGACY_QUEUE = "nexflow-flows"
_RUN_ID = re.compile(r"^[A-Za-z0-9_.-]{1,100}$")
_APP_NAME = re.compile(r"^[a-z0-9_-]{3,}$")
TERMINAL = ("completed", "failed", "cancelled")
SETTLED = (*TERMINAL, "waiting", "paused")
Action = Literal["pause", "resume", "stop", "retry"]


class FlowEngine:
    """Durable flow runs for one gateway; see the module docstring."""

    def __init__(
        self,
        host: FlowHost,
        *,
        home: Path,
        database_url: str | None = None,
        executor_id: str = "nexflow-local",
        concurrency: int = 4,
        per_user_concurrency: int | None = None,
        app_name: str = "nexflow",
        queue_poll_s: float = 0.2,
        notify_poll_s: float = 0.5,
        log_level: str = "WARNING",
        max_threads: int = 32,
        listen: bool = True,
    ) -> None:
        if not _APP_NAME.match(app_name):
            raise ValueError("app_name: lowercase letters, digits, '-' or '_', 3+ characters")
        self._host = host
        self._home = home
        self._url = database_url or f"sqlite:///{(home / 'flows.sqlite3').resolve()}"
        self._executor_id = executor_id
        self._concurrency = concurrency
        # DBOS refuses a partition limit above the queue's own
        self._per_user = (
            None if per_user_concurrency is None else min(per_user_concurrency, concurrency)
        )
        self._app_name = app_name
        self._queue_poll_s = queue_poll_s
        self._notify_poll_s = notify_poll_s
        self._log_level = log_level
        self._max_threads = max_threads
        self._listen = listen
        self._presence: ExecutorPresence | None = None
        self._lock = asyncio.Lock()
        self._durable: ModuleType | None = None
        self._reader: RunReader | None = None
        self._loop_executor: tuple[asyncio.AbstractEventLoop, Any] | None = None
        self._queue: Any = None  # dbos.Queue, typed loosely so this module needs no DBOS

    # -- lifecycle ------------------------------------------------------------------

    @property
    def executor_id(self) -> str:
        return self._executor_id

    @property
    def database_url(self) -> str:
        return self._url

    async def launch(self) -> None:
        """Launch DBOS now rather than on first use (a worker; recovery starts here)."""
        await self._ensure()

    async def _ensure(self) -> ModuleType:
        if self._durable is not None:
            return self._durable
        async with self._lock:
            if self._durable is None:
                durable = await self._launch()
                from nexflow.flows.reader import RunReader

                self._reader = RunReader(durable)
                self._durable = durable
            return self._durable

    async def _launch(self) -> ModuleType:
        durable = await asyncio.to_thread(importlib.import_module, "nexflow.flows.durable")
        durable.bind(self._host, self)
        from dbos import DBOS

        try:
            self._home.mkdir(parents=True, exist_ok=True)
            if self._url.startswith("sqlite:///"):
                await asyncio.to_thread(_use_wal, Path(self._url.removeprefix("sqlite:///")))
        except (OSError, sqlite3.Error) as e:
            durable.unbind(self)
            raise EngineUnavailable("the flow engine cannot open its database") from e
        # DBOS replaces the running loop's default executor with its own and shuts that
        # down on destroy, which would break every later asyncio.to_thread in the
        # gateway; remember the loop's own (a private attribute: there is no getter)
        # and put it back on close.
        if is_postgres(self._url):
            presence = ExecutorPresence(self._url, self._executor_id)
            try:
                await presence.hold()
            except EngineUnavailable:
                durable.unbind(self)
                raise
            self._presence = presence
        loop = asyncio.get_running_loop()
        self._loop_executor = (loop, getattr(loop, "_default_executor", None))
        try:
            dbos = DBOS(
                config={
                    "name": self._app_name,
                    "system_database_url": self._url,
                    "executor_id": self._executor_id,
                    "application_version": durable.APP_VERSION,
                    "notification_listener_polling_interval_sec": self._notify_poll_s,
                    "log_level": self._log_level,
                    # DBOS's pool also serves the loop's asyncio.to_thread while it runs
                    "max_executor_threads": self._max_threads,
                }
            )
            if not self._listen:  # enqueue only: workers dequeue (flows.run_on: workers)
                DBOS.listen_queues([])
            _internal_queue(dbos, run=self._listen)
            # On this loop's thread: DBOS adopts the running loop for queued workflows.
            # It blocks the loop for its migrations (~0.1 s measured, once per engine).
            DBOS.launch()
            logging.getLogger("dbos").addFilter(_quiet_run_failures)
            self._queue = await DBOS.register_queue_async(
                QUEUE,
                global_concurrency=self._concurrency,
                partition_concurrency=self._per_user,
                polling_interval_sec=self._queue_poll_s,
                on_conflict="always_update",
            )
            await DBOS.register_queue_async(
                LEGACY_QUEUE,
                global_concurrency=self._concurrency,
                polling_interval_sec=self._queue_poll_s,
                on_conflict="always_update",
            )
        except Exception as e:
            DBOS.destroy()
            logging.getLogger("dbos").removeFilter(_quiet_run_failures)
            durable.unbind(self)
            self._restore_executor()
            await self._release_presence()
            raise EngineUnavailable("the flow engine could not start (see logs)") from e
        return durable

    async def close(self) -> None:
        """Stop running workflows (they resume on the next launch) and destroy DBOS."""
        durable = self._durable
        if durable is None:
            return
        self._durable = None
        self._reader = None
        await durable.cancel_local_tasks()
        from dbos import DBOS

        DBOS.destroy()
        logging.getLogger("dbos").removeFilter(_quiet_run_failures)
        durable.unbind(self)
        self._restore_executor()
        await self._release_presence()

    async def _release_presence(self) -> None:
        presence, self._presence = self._presence, None
        if presence is not None:
            await presence.release()

    async def recover(self, executors: Sequence[str]) -> int:
        """Hand the ``PENDING`` workflows of dead ``executors`` back to their queues (see
        :mod:`nexflow.flows.executors`); returns how many were found. Uses DBOS's own
        recovery (``DBOS._recover_pending_workflows``, the call its start-up recovery and
        its admin API make; there is no public name for it in DBOS 3.4)."""
        if not executors:
            return 0
        await self._ensure()
        from dbos import DBOS

        handles = await asyncio.to_thread(DBOS._recover_pending_workflows, list(executors))
        return len(handles)

    def _restore_executor(self) -> None:
        if self._loop_executor is None:
            return
        loop, previous = self._loop_executor
        self._loop_executor = None
        loop.set_default_executor(previous or ThreadPoolExecutor(thread_name_prefix="asyncio"))

    def _require_reader(self) -> RunReader:
        assert self._reader is not None
        return self._reader

    # -- runs -----------------------------------------------------------------------

    async def start(
        self,
        flow: Flow,
        args: Mapping[str, Any],
        *,
        owner: str,
        origin: Origin | None = None,
        priority: int = 3,
        run_id: str | None = None,
        tainted: Sequence[str] = (),
    ) -> str:
        """Queue a run; idempotent by ``run_id`` (the same id returns the same run).
        ``tainted``: the run's inputs came from outside (their sources): every node of
        the run is tainted by them (:mod:`nexflow.flows.clearance`)."""
        if not 1 <= priority <= 5:
            raise RunControlError("priority must be between 1 and 5")
        run_id = run_id or uuid.uuid4().hex
        if not _RUN_ID.match(run_id):
            raise RunControlError("run id: letters, digits, '.', '_' or '-', up to 100")
        inputs, problems = bind_inputs(flow, dict(args))
        if problems:
            raise RunControlError("; ".join(problems))
        durable = await self._ensure()
        from dbos import DBOS, SetEnqueueOptions, SetWorkflowAttributes, SetWorkflowID

        existing = await DBOS.get_workflow_status_async(run_id)
        if existing is not None:
            if (existing.attributes or {}).get(OWNER_ATTR) != owner:
                raise RunControlError("this run id is already in use")
            return run_id
        info = RunInfo(run_id, flow.name, owner, origin or Origin(), tuple(tainted))
        attrs = {OWNER_ATTR: owner, FLOW_ATTR: flow.name}
        with (
            SetWorkflowID(run_id),
            # the owner is the partition (a no-op while the queue is not partitioned)
            SetEnqueueOptions(priority=dbos_priority(priority), queue_partition_key=owner),
            SetWorkflowAttributes(attrs),
        ):
            await self._queue.enqueue_async(
                durable.run_workflow, flow.to_data(), inputs, info.to_data()
            )
        return run_id

    async def status(self, run_id: str, *, owner: str | None = None) -> RunStatus:
        """The run with its nodes; :class:`RunNotFound` if absent or not ``owner``'s."""
        await self._ensure()
        return await self._require_reader().status(run_id, owner)

    async def wait(
        self,
        run_id: str,
        *,
        owner: str | None = None,
        timeout_s: float = 60,
        states: Collection[str] = SETTLED,
    ) -> RunStatus:
        """Poll until the run's status is in ``states`` or ``timeout_s`` passes (for
        tests and the CLI; the gateway should watch statuses instead)."""
        await self._ensure()
        return await self._require_reader().wait(run_id, owner, timeout_s, states)

    async def list_runs(
        self, owner: str | None = None, *, status: str | None = None, limit: int = 100
    ) -> list[RunSummary]:
        """Runs, newest first; ``status`` filters on the coarse status (``failed`` runs
        are the dead letters: retry or fork them)."""
        await self._ensure()
        return await self._require_reader().list_runs(owner, status, limit)

    async def stats(self, owner: str | None = None) -> RunStats:
        runs = await self.list_runs(owner, limit=10_000)
        by_status: dict[str, int] = {}
        by_flow: dict[str, int] = {}
        for r in runs:
            by_status[r.status] = by_status.get(r.status, 0) + 1
            by_flow[r.flow] = by_flow.get(r.flow, 0) + 1
        return RunStats(len(runs), by_status, by_flow)

    # -- control --------------------------------------------------------------------

    async def control(self, run_id: str, action: Action, *, owner: str | None = None) -> str:
        """Pause, resume, stop or retry a run; returns the id of the run that continues
        (a retry forks a new run from the failed node)."""
        await self._ensure()
        from dbos import DBOS

        run = await self.status(run_id, owner=owner)
        if action == "pause":
            if run.status not in ("queued", "running", "waiting"):
                raise RunControlError(f"cannot pause a run that is {run.status}")
            await DBOS.update_workflow_attributes_async(
                run_id, {CONTROL_ATTR: "paused"}, merge=True
            )
            await DBOS.cancel_workflow_async(run_id, cancel_children=True)
        elif action == "stop":
            if run.status not in ("queued", "running", "waiting", "paused"):
                raise RunControlError(f"cannot stop a run that is {run.status}")
            await DBOS.update_workflow_attributes_async(
                run_id, {CONTROL_ATTR: "stopped"}, merge=True
            )
            await DBOS.cancel_workflow_async(run_id, cancel_children=True)
        elif action == "resume":
            if run.status != "paused":
                raise RunControlError(f"cannot resume a run that is {run.status}")
            for child in await self._require_reader().cancelled_descendants(run_id):
                await DBOS.resume_workflow_async(child)
            await DBOS.update_workflow_attributes_async(run_id, {CONTROL_ATTR: None}, merge=True)
            await DBOS.resume_workflow_async(run_id, queue_name=QUEUE)
        elif action == "retry":
            if run.status != "failed":
                raise RunControlError(f"cannot retry a run that is {run.status}")
            failed = [n.node for n in run.nodes if n.status == "failed"]
            if not failed:
                raise RunControlError("nothing to retry: no node failed (budget or input error)")
            return await self._fork(run, failed[0])
        else:
            raise RunControlError(f"unknown action '{action}'")
        return run_id

    async def fork(self, run_id: str, from_node: str, *, owner: str | None = None) -> str:
        """A new run that reuses the steps before ``from_node`` and runs it again."""
        run = await self.status(run_id, owner=owner)
        return await self._fork(run, from_node)

    async def _fork(self, run: RunStatus, from_node: str) -> str:
        from dbos import DBOS

        step = await self._require_reader().start_step(run.run_id, from_node)
        if step is None:
            raise RunControlError(f"node '{from_node}' never ran in this run")
        handle = await DBOS.fork_workflow_async(
            run.run_id, step, queue_name=QUEUE, queue_partition_key=run.owner
        )
        new_id = handle.get_workflow_id()
        attrs = {OWNER_ATTR: run.owner, FLOW_ATTR: run.flow}
        await DBOS.update_workflow_attributes_async(new_id, attrs)
        return new_id

    async def answer(self, run_id: str, node: str, approved: bool, by: str) -> None:
        """Deliver an approval answer from user ``by`` (the run's owner) to ``node``."""
        await self._ensure()
        from dbos import DBOS

        run = await self.status(run_id, owner=by)
        target = next((n for n in run.nodes if n.node == node), None)
        if target is None or target.type != "approval" or target.status != "waiting":
            raise RunControlError(f"node '{node}' is not waiting for an approval")
        assert self._durable is not None
        child = self._durable.node_workflow_id(run_id, node)
        await DBOS.send_async(
            child,
            {"approved": approved, "by": by},
            self._durable.APPROVAL_TOPIC,
            idempotency_key=f"{child}:answer",
        )


def _internal_queue(dbos: Any, *, run: bool) -> None:
    """Whether this process dequeues DBOS's internal queue (recovered node workflows and
    sub-flows, resumed nodes). ``listen_queues`` cannot exclude it, so an enqueue-only
    engine registers it, before launch, with ``worker_concurrency=0``: its dequeue then
    claims nothing. The queue lives in DBOS's process-wide registry, which outlives
    ``DBOS.destroy``: every launch replaces it, so the next engine in the process gets
    its own. Private DBOS API (3.4, pinned below 4): checked by tests/e2e/test_worker.py."""
    from dbos._utils import INTERNAL_QUEUE_NAME

    registry = dbos._registry
    registry.internal_queue_map.pop(INTERNAL_QUEUE_NAME, None)
    if not run:
        registry._register_internal_queue(INTERNAL_QUEUE_NAME, worker_concurrency=0)


def _quiet_run_failures(record: logging.LogRecord) -> bool:
    """Drop DBOS's ERROR traceback for a run that failed the expected way (a node
    failed, the budget ran out): the reason is in the run's status, not a bug."""
    return not (record.exc_info and isinstance(record.exc_info[1], RunFailed))


def _use_wal(path: Path) -> None:
    """Switch the SQLite file to WAL (persistent): DBOS leaves the default rollback
    journal, which costs several fsyncs per checkpoint. Measured in docs/flows.md."""
    conn = sqlite3.connect(path)
    try:
        conn.execute("PRAGMA journal_mode=WAL")
    finally:
        conn.close()


__all__ = ["Action", "FlowEngine", "RunNotFound"]
