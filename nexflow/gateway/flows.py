"""``FlowService``: the gateway's one entry point to flows (``docs/flows.md``).

HTTP routes and chat commands call it with the caller's user id; it owns the
:class:`~nexflow.flows.FlowEngine` (created lazily: importing DBOS costs ~0.5 s) and
reads and writes flow files in the caller's default workspace (``flows/<name>.yaml``).
Lifecycle (``nexflow/app.py``): :meth:`FlowService.launch` after the gateway is up
starts the engine in a supervised background task only when runs were left unfinished
(so they resume); :meth:`FlowService.close` waits for it and closes the engine, which
frees DBOS for the next engine in the process. Approval answers come in through
:meth:`FlowService.answer` (wired to ``ApprovalService.on_flow_answer``). Cron triggers
are scheduled by :class:`~nexflow.gateway.flow_triggers.FlowTriggers` (the ``schedule``
attribute): saving a flow updates its triggers, listing a user's flows brings their
schedule up to date with the files, and each fire comes back through :meth:`start`.
With ``flows.run_on: workers`` the gateway's engine only enqueues and steers runs;
``nexflow worker`` processes (built by :mod:`nexflow.flow_runtime`, ``worker=True``) run
them (docs/scale-out.md, "Workers").

Exceptions: the flows library's tree (``nexflow.flows.errors``) is reused, every
``message`` is user-safe: :class:`FlowNotFound` (no such flow file for this user),
:class:`FlowArgsError` (the run's arguments do not fit the flow's inputs),
:class:`~nexflow.flows.FlowInvalid` (with ``issues`` as ``file:line:col: message``),
:class:`~nexflow.flows.RunNotFound` (missing or someone else's run),
:class:`~nexflow.flows.RunControlError`, :class:`~nexflow.flows.EngineUnavailable`.
"""

from __future__ import annotations

import asyncio
import re
import sqlite3
from collections.abc import Collection, Mapping
from dataclasses import dataclass, replace
from datetime import datetime
from pathlib import Path
from typing import Any, Literal, Protocol

import structlog

from nexflow.config.model import FlowsConfig
from nexflow.flows.engine import FlowEngine
from nexflow.flows.errors import (
    EngineUnavailable,
    FlowError,
    FlowInvalid,
    FlowIssue,
    RunControlError,
    RunNotFound,
)
from nexflow.flows.host import Origin
from nexflow.flows.loader import load_flow, load_flow_text
from nexflow.flows.model import FLOW_NAME, Flow, bind_inputs
from nexflow.flows.status import RunStats, RunStatus, RunSummary
from nexflow.gateway.flow_host import FlowNotFound, GatewayFlowHost, flow_file
from nexflow.storage.engine import redact
from nexflow.storage.repo_flows import FlowStorage, parse_flow_key
from nexflow.workspace.api import WorkspaceError
from nexflow.workspace.lazy import LazyWorkspaces

log = structlog.get_logger("nexflow.flows")
Action = Literal["pause", "resume", "stop", "retry"]


class FlowArgsError(FlowError):
    """A run's arguments do not fit the flow's declared inputs."""


@dataclass(frozen=True)
class FlowSummary:
    """A flow file in a user's workspace; ``errors`` are ``file:line:col: message``;
    ``next_run`` is the next fire of its cron triggers (None without triggers)."""

    name: str
    description: str
    path: str
    valid: bool
    errors: tuple[str, ...]
    next_run: datetime | None = None


class Schedule(Protocol):
    """What the service tells the trigger scheduler (:mod:`nexflow.gateway.flow_triggers`)."""

    async def sync(
        self, owner: str, valid: Mapping[str, Flow], invalid: Collection[str]
    ) -> None: ...
    async def update(self, owner: str, name: str, flow: Flow | None) -> None: ...
    async def next_runs(self, owner: str) -> dict[str, datetime]: ...


class FlowService:
    """Flows for the gateway's users; the engine starts on first use (see module doc)."""

    def __init__(
        self,
        config: FlowsConfig,
        home: Path,
        host: GatewayFlowHost,
        workspaces: LazyWorkspaces,
        store: FlowStorage,
        *,
        worker: bool = False,
    ) -> None:
        self._config = config
        # A worker, or a gateway that runs flows itself, dequeues runs; a gateway with
        # flows.run_on: workers only enqueues them (docs/scale-out.md, "Workers").
        self._listen = worker or config.run_on == "gateway"
        self._home = home
        self._host = host
        self._workspaces = workspaces
        self._store = store
        self._engine: FlowEngine | None = None
        self._lock = asyncio.Lock()
        self._boot: asyncio.Task[None] | None = None
        self._closed = False
        # the cron triggers' scheduler, set by the composition root (it starts runs here)
        self.schedule: Schedule | None = None

    # -- lifecycle --------------------------------------------------------------------

    @property
    def running(self) -> bool:
        return self._engine is not None

    async def engine(self) -> FlowEngine:
        """The engine, launched on first use (DBOS import + launch, ~0.5 s)."""
        if not self._config.enabled:
            raise EngineUnavailable("flows are turned off (flows.enabled)")
        if self._engine is not None:
            return self._engine
        async with self._lock:
            if self._closed:
                raise EngineUnavailable("the gateway is stopping")
            if self._engine is None:
                url = self._config.database_for(self._home)
                if not self._listen and url.startswith("sqlite:///"):
                    raise EngineUnavailable(
                        "flows.run_on: workers needs Postgres (storage.url): the gateway "
                        "and its workers share the run queue there"
                    )
                await self._folders()
                engine = FlowEngine(
                    self._host,
                    home=self._home,
                    database_url=url,
                    executor_id=self._config.executor_for(self._home),
                    concurrency=self._config.concurrency,
                    per_user_concurrency=self._config.per_user_concurrency,
                    queue_poll_s=self._config.queue_poll_s,
                    max_threads=self._config.max_threads,
                    listen=self._listen,
                )
                self._engine = engine
            return self._engine

    async def launch(self) -> None:
        """At gateway start: launch the engine in the background only when the flows
        database holds unfinished runs (they resume); otherwise it waits for first use."""
        if not self._config.enabled or not await asyncio.to_thread(self._unfinished):
            return
        self._boot = asyncio.create_task(self._resume(), name="nexflow-flows-resume")

    async def _resume(self) -> None:
        try:
            engine = await self.engine()
            await engine.list_runs(limit=1)  # launches DBOS: recovery starts here
            log.info("flows_resumed")
            await self._redeliver(engine)
        except FlowError as exc:
            log.error("flows_resume_failed", error=exc.message, exc_info=exc)

    async def _redeliver(self, engine: FlowEngine) -> None:
        """Answers stored before a crash kept them from their node (the approval is
        recorded first, then sent to the engine): each still-waiting node gets its stored
        answer now. A node that has it already or no longer waits is left alone (the send
        is idempotent per node)."""
        for record in await self._store.answered_flow_approvals():
            flow = parse_flow_key(record.call_key)
            if flow is None:
                continue
            approved = record.status == "approved"
            try:
                await engine.answer(flow[0], flow[1], approved, by=record.user_id)
            except FlowError:
                continue
            log.info("flow_answer_redelivered", run=flow[0], node=flow[1], approval=record.id)

    def _unfinished(self) -> bool:
        url = self._config.database_for(self._home)
        if not url.startswith("sqlite:///"):
            return self._unfinished_on_postgres(url)
        path = Path(url.removeprefix("sqlite:///"))
        if not path.exists():
            return False
        try:
            conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
            try:
                row = conn.execute(
                    "SELECT 1 FROM workflow_status WHERE status IN ('PENDING','ENQUEUED') LIMIT 1"
                ).fetchone()
            finally:
                conn.close()
        except sqlite3.Error:
            log.warning("flows_database_unreadable", path=str(path), exc_info=True)
            return False
        return row is not None

    def _unfinished_on_postgres(self, url: str) -> bool:
        """Runs to resume (this executor's) or to start (queued by any replica), in
        DBOS's ``dbos`` schema of the shared database: one query, where launching DBOS to
        find out costs ~1 s and a connection pool."""
        import psycopg

        executor = self._config.executor_for(self._home)
        try:
            with psycopg.connect(url, connect_timeout=10) as conn:
                row = conn.execute(
                    "SELECT 1 FROM dbos.workflow_status WHERE status = 'ENQUEUED' "
                    "OR (status = 'PENDING' AND executor_id = %s) LIMIT 1",
                    (executor,),
                ).fetchone()
        except psycopg.errors.UndefinedTable:
            return False  # DBOS never ran on this database
        except psycopg.Error:
            log.warning("flows_database_unreadable", database=redact(url), exc_info=True)
            return True  # unsure: let DBOS launch and say what is wrong
        return row is not None

    async def close(self) -> None:
        """Stop the background start, then close the engine (DBOS is destroyed: the next
        gateway in this process can start its own)."""
        if self._boot is not None:
            # Let a background launch finish (~0.7 s) rather than cut it in half: a
            # half-launched DBOS would keep the next engine in this process out.
            await asyncio.gather(self._boot, return_exceptions=True)
            self._boot = None
        self._closed = True
        async with self._lock:
            engine, self._engine = self._engine, None
        if engine is not None:
            await engine.close()

    async def _folders(self) -> None:
        try:
            service = await self._workspaces.service()
        except WorkspaceError as exc:
            raise EngineUnavailable(f"flows need the workspaces: {exc.message}") from exc
        self._host.folder = service.workspace_path

    async def _folder(self, user_id: str) -> Path:
        await self._folders()
        assert self._host.folder is not None
        return self._host.folder(user_id)

    # -- flows ------------------------------------------------------------------------

    async def list_flows(self, user_id: str) -> list[FlowSummary]:
        """The user's flow files; listing also brings their triggers' schedule up to date
        with the files (a flow edited or deleted outside :meth:`save_flow`)."""
        folder = await self._folder(user_id)
        listed, valid = await asyncio.to_thread(_scan, folder)
        if self.schedule is None:
            return listed
        invalid = [f.name for f in listed if not f.valid]
        await self.schedule.sync(user_id, valid, invalid)
        upcoming = await self.schedule.next_runs(user_id)
        return [replace(f, next_run=upcoming.get(f.name) if f.valid else None) for f in listed]

    async def flows_of(self, user_id: str) -> tuple[dict[str, Flow], list[str]]:
        """The user's flows that load, and the names of those that do not."""
        listed, valid = await asyncio.to_thread(_scan, await self._folder(user_id))
        return valid, [f.name for f in listed if not f.valid]

    async def save_flow(self, user_id: str, name: str, text: str) -> FlowSummary:
        """Validate, then commit ``flows/<name>.yaml`` on main of the user's default
        workspace; :class:`FlowInvalid` (nothing written) when it does not validate."""
        rel = f"flows/{name}.yaml"
        if not re.match(FLOW_NAME, name):
            raise FlowInvalid([FlowIssue(rel, 0, 0, "name: use a-z, 0-9, '-' or '_'")])
        flow = load_flow_text(text, rel)
        if flow.name != name:
            raise FlowInvalid(
                [FlowIssue(rel, 1, 1, f"name: '{flow.name}' must match the file name '{name}'")]
            )
        try:
            service = await self._workspaces.service()
            await service.write_file(user_id, rel, text)
        except WorkspaceError as exc:
            raise FlowError(f"the flow could not be saved: {exc.message}") from exc
        next_run = None
        if self.schedule is not None:
            await self.schedule.update(user_id, name, flow)
            next_run = (await self.schedule.next_runs(user_id)).get(name)
        return FlowSummary(name, flow.description, rel, True, (), next_run)

    async def load(self, user_id: str, name: str) -> Flow:
        folder = await self._folder(user_id)
        path = flow_file(folder, name)
        if not await asyncio.to_thread(path.is_file):
            raise FlowNotFound(f"no flow named '{name}' (expected flows/{name}.yaml)")
        return await asyncio.to_thread(load_flow, path)

    # -- runs -------------------------------------------------------------------------

    async def start(
        self,
        user_id: str,
        name: str,
        args: Mapping[str, Any],
        origin: Origin,
        *,
        priority: int = 3,
        run_id: str | None = None,
        tainted_by: str | None = None,
    ) -> str:
        """Queue a run of the user's flow ``name``; returns the run id. ``run_id`` makes
        the start idempotent (the same id returns the same run: a webhook delivery).
        ``tainted_by``: the run's inputs came from outside (``webhook:<name>``): the run is
        untrusted from its first node, so its agent turns are too, and a tool that needs
        confirmation waits for an approval node answered after that."""
        flow = await self.load(user_id, name)
        _, problems = bind_inputs(flow, dict(args))
        if problems:
            raise FlowArgsError(f"flow '{name}': " + "; ".join(problems))
        if flow.budget_tokens is None and self._config.default_budget_tokens is not None:
            flow = flow.model_copy(update={"budget_tokens": self._config.default_budget_tokens})
        engine = await self.engine()
        return await engine.start(
            flow,
            args,
            owner=user_id,
            origin=origin,
            priority=priority,
            run_id=run_id,
            tainted=() if tainted_by is None else (tainted_by,),
        )

    async def runs(self, user_id: str, *, everyone: bool = False) -> list[RunSummary]:
        engine = await self.engine()
        return await engine.list_runs(None if everyone else user_id)

    async def dead(
        self, user_id: str, *, everyone: bool = False, limit: int = 100
    ) -> list[RunStatus]:
        """Dead-lettered tasks, newest first: failed runs whose failing node ran all of
        its tries (the engine marks a node failed only after its last try, so a failed
        node with attempts is exhausted). A run failed by its budget or its inputs has no
        failed node and is not listed: retrying it would fail the same way."""
        engine = await self.engine()
        failed = await engine.list_runs(None if everyone else user_id, status="failed", limit=limit)
        out: list[RunStatus] = []
        for summary in failed:
            try:
                run = await engine.status(summary.run_id)
            except RunNotFound:  # gone between the list and the read
                continue
            if dead_node(run) is not None:
                out.append(run)
        return out

    async def run(self, user_id: str, run_id: str) -> RunStatus:
        engine = await self.engine()
        return await engine.status(run_id, owner=user_id)

    async def control(self, user_id: str, run_id: str, action: Action) -> str:
        engine = await self.engine()
        return await engine.control(run_id, action, owner=user_id)

    async def fork(self, user_id: str, run_id: str, from_node: str) -> str:
        engine = await self.engine()
        return await engine.fork(run_id, from_node, owner=user_id)

    async def stats(self, user_id: str | None) -> RunStats:
        engine = await self.engine()
        return await engine.stats(user_id)

    async def answer(self, run_id: str, node: str, approved: bool, user_id: str) -> bool:
        """An approval card's answer (from :class:`ApprovalService`); False when the node
        no longer waits (expired, answered, or the run ended)."""
        try:
            engine = await self.engine()
            await engine.answer(run_id, node, approved, by=user_id)
        except FlowError as exc:  # not waiting any more, the run is gone, flows are off
            log.info("flow_answer_refused", run=run_id, node=node, reason=exc.message)
            return False
        return True


def dead_node(run: RunStatus) -> str | None:
    """The node a dead-lettered run failed at (``retry`` runs again from it), or None
    when the run is not dead (not failed, or failed without a node exhausting its tries)."""
    if run.status != "failed":
        return None
    return next((n.node for n in run.nodes if n.status == "failed" and n.attempts > 0), None)


def _scan(folder: Path) -> tuple[list[FlowSummary], dict[str, Flow]]:
    out: list[FlowSummary] = []
    valid: dict[str, Flow] = {}
    for path in sorted((folder / "flows").glob("*.yaml")):
        rel = f"flows/{path.name}"
        try:
            flow = load_flow(rel, text=path.read_text(encoding="utf-8"))
        except FlowInvalid as exc:
            out.append(FlowSummary(path.stem, "", rel, False, tuple(map(str, exc.issues))))
        except (OSError, UnicodeDecodeError):
            out.append(FlowSummary(path.stem, "", rel, False, (f"{rel}:0:0: unreadable",)))
        else:
            out.append(FlowSummary(path.stem, flow.description, rel, True, ()))
            valid[path.stem] = flow  # runs load a flow by its file name
    return out, valid


__all__ = [
    "Action",
    "FlowArgsError",
    "FlowError",
    "FlowInvalid",
    "FlowNotFound",
    "FlowService",
    "FlowSummary",
    "RunControlError",
    "RunNotFound",
    "dead_node",
]
