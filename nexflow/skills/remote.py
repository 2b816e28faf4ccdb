"""Skill runs handed to ``nexflow worker`` processes (``skills.run_on: workers``).

The gateway keeps the gate: :class:`~nexflow.skills.tools.RunSkillTool` checks the
caller's permissions, asks the user for a dangerous skill and writes the audit record.
Only the spawn moves. :class:`WorkerSkills` (the tool's ``hand_off``) enqueues the DBOS
workflow ``nexflow.skills.run`` (:mod:`nexflow.flows.durable`) on :data:`SKILL_QUEUE` in
the flow engine's Postgres database and awaits its result; a worker dequeues it and runs
the skill with its own :class:`~nexflow.skills.runner.SkillRunner` (the same isolation and
limits) through :meth:`RunSkillTool.execute` (:func:`serve_skills`).

- **One run per call.** The workflow id is derived from the call (:func:`run_id_for`): a
  chat turn's inbox id (``ToolContext.turn_id``) or a flow step's idempotency key, with
  the call's name and canonical arguments (the key approvals use,
  :func:`nexflow.tools.approval.call_key`). A turn replayed after a gateway crash makes the
  same call, enqueues the same id and joins the workflow the first attempt started (DBOS
  returns the existing one) instead of running the skill twice. The same call twice in
  one turn is one run too, as it is one approval. A call with neither (an MCP client)
  gets a random id.
- **At least once, applied once.** A worker SIGKILLed mid-run leaves the workflow
  ``PENDING``: DBOS runs it again when the same executor id starts, or another worker's
  sweep hands it back to the queue (:mod:`nexflow.flows.executors`). The skill then runs a
  second time with the same ``NEXFLOW_IDEMPOTENCY_KEY`` (the flow step's key, else the
  workflow id), so a skill that honours it applies its side effect once.
- **No secret values in the database.** Workflow inputs are stored in Postgres: the
  request carries the skill's name, its input and who calls (user, session, channel,
  permissions), never a secret; the worker resolves the secrets the caller is granted
  from its own configuration (``skills.secrets``, its secrets file and environment).
- The result comes back as JSON (:func:`result_to_data`): the audit record and the
  model's tool message are written in the gateway from it, as for a local run. The
  worker also sets it as a workflow event, which wakes the waiting gateway at once
  (DBOS's ``LISTEN/NOTIFY`` on Postgres); the gateway also reads the run's status every
  ten queue polls, for a run that ended without one.
- **Stop reaches the worker.** A turn the user stops while its skill runs on a worker
  (the chat's Stop: :data:`~nexflow.tools.base.TURN_STOPPED`) cancels the workflow
  (``DBOS.cancel_workflow``); a gateway shutting down does not, so the replayed turn
  joins the run; the worker looks at its run's status every ``watch_s``
  while the skill runs and, once it is cancelled, kills the skill's process group as a
  local run's Stop does.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import hashlib
import uuid
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import structlog

from nexflow.skills.errors import SkillError
from nexflow.skills.isolation import IsolationLevel
from nexflow.skills.result import RunResult
from nexflow.tools.approval import call_key
from nexflow.tools.base import ToolContext, stopped_by_user

if TYPE_CHECKING:
    from nexflow.flows.engine import FlowEngine
    from nexflow.skills.tools import RunSkillTool

log = structlog.get_logger("nexflow.skills.remote")

SKILL_QUEUE = "nexflow-skills"
RUN_PREFIX = "nexflow-skill-"


def run_id_for(skill: str, payload: Mapping[str, Any], ctx: ToolContext) -> str:
    """The workflow id of this call (see the module docstring)."""
    if ctx.idempotency_key:
        origin = f"step\0{ctx.idempotency_key}"
    elif ctx.turn_id:
        origin = f"turn\0{ctx.turn_id}\0{ctx.session_id}"
    else:
        return RUN_PREFIX + uuid.uuid4().hex
    call = call_key("run_skill", {"name": skill, "input": dict(payload)})
    return RUN_PREFIX + hashlib.sha256(f"{origin}\0{call}".encode()).hexdigest()[:40]


@dataclass(frozen=True, slots=True)
class SkillRequest:
    """A handed-off run as stored in the workflow's inputs: no secret values."""

    skill: str
    payload: Mapping[str, Any]
    idempotency_key: str
    user_id: str
    session_id: str
    channel: str
    chat_id: str
    permissions: tuple[str, ...]
    role: str
    tainted: tuple[str, ...]

    @classmethod
    def of(cls, skill: str, payload: Mapping[str, Any], ctx: ToolContext, key: str) -> SkillRequest:
        return cls(
            skill,
            dict(payload),
            key,
            ctx.user_id,
            ctx.session_id,
            ctx.channel,
            ctx.chat_id,
            tuple(sorted(ctx.permissions)),
            ctx.role,
            ctx.tainted,
        )

    def to_data(self) -> dict[str, Any]:
        data = dataclasses.asdict(self)
        return data | {"permissions": list(self.permissions), "tainted": list(self.tainted)}

    @classmethod
    def from_data(cls, data: Mapping[str, Any]) -> SkillRequest:
        return cls(
            str(data["skill"]),
            dict(data.get("payload") or {}),
            str(data["idempotency_key"]),
            str(data.get("user_id", "")),
            str(data.get("session_id", "")),
            str(data.get("channel", "")),
            str(data.get("chat_id", "")),
            tuple(str(p) for p in data.get("permissions") or ()),
            str(data.get("role", "user")),
            tuple(str(t) for t in data.get("tainted") or ()),
        )

    def context(self) -> ToolContext:
        """The caller as the worker sees it: no ``confirm`` (the gateway asked)."""
        return ToolContext(
            user_id=self.user_id,
            session_id=self.session_id,
            channel=self.channel,
            chat_id=self.chat_id,
            permissions=frozenset(self.permissions),
            role=self.role,
            tainted=self.tainted,
            idempotency_key=self.idempotency_key,
        )


def result_to_data(result: RunResult) -> dict[str, Any]:
    data = dataclasses.asdict(result)
    return data | {"isolation": result.isolation.value, "input": dict(result.input)}


def result_from_data(data: Mapping[str, Any]) -> RunResult:
    fields = {f.name for f in dataclasses.fields(RunResult)}
    values = {k: v for k, v in data.items() if k in fields}
    values["isolation"] = IsolationLevel(values["isolation"])
    return RunResult(**values)


async def skill_queue(*, concurrency: int, poll_s: float, owner: bool) -> Any:
    """The workers' queue in DBOS's database (a ``dbos.Queue``). Workers (``owner``)
    write its settings; a gateway registers it only if no worker has yet, so it can
    enqueue before the first worker starts."""
    from dbos import DBOS

    return await DBOS.register_queue_async(
        SKILL_QUEUE,
        worker_concurrency=concurrency,
        polling_interval_sec=poll_s,
        on_conflict="always_update" if owner else "never_update",
    )


class WorkerSkills:
    """The gateway's half: enqueue the run for the workers, await its result.

    ``engine`` is the flow service's (launched on first use, enqueue-only with
    ``flows.run_on: workers``); ``poll_s`` is ``flows.queue_poll_s``: the result wakes the
    gateway as an event, and every ten polls the run's status is read as well;
    ``concurrency`` the per-worker limit used if this gateway creates the queue."""

    def __init__(
        self,
        engine: Callable[[], Awaitable[FlowEngine]],
        *,
        poll_s: float,
        concurrency: int,
    ) -> None:
        self._engine = engine
        self._poll_s = poll_s
        self._concurrency = concurrency
        self._queue: Any = None

    async def run(self, skill: str, payload: Mapping[str, Any], ctx: ToolContext) -> RunResult:
        from nexflow.flows.errors import FlowError

        run_id = run_id_for(skill, payload, ctx)
        request = SkillRequest.of(skill, payload, ctx, ctx.idempotency_key or run_id)
        try:
            out = await self._run(run_id, request)
        except asyncio.CancelledError as exc:
            if stopped_by_user(exc):  # the user stopped the turn: so is the run
                await asyncio.shield(self._cancel(skill, run_id))
            raise  # a shutdown: the run goes on, and the replayed turn joins it
        except FlowError as exc:
            why = f"skill {skill!r} could not be handed to a worker: {exc.message}"
            raise SkillError(why) from exc
        except SkillError:
            raise
        except Exception as exc:  # DBOS's errors, and what the worker's run raised
            log.warning("skill_hand_off_failed", skill=skill, run=run_id, exc_info=exc)
            raise SkillError(f"skill {skill!r} failed on a worker (see the logs)") from exc
        if "refused" in out:
            raise SkillError(str(out["refused"]))
        return result_from_data(out["result"])

    async def _run(self, run_id: str, request: SkillRequest) -> dict[str, Any]:
        engine = await self._engine()
        await engine.launch()
        from dbos import SetWorkflowID

        from nexflow.flows import durable

        if self._queue is None:
            self._queue = await skill_queue(
                concurrency=self._concurrency, poll_s=self._poll_s, owner=False
            )
        with SetWorkflowID(run_id):  # an existing id joins the run it names
            handle = await self._queue.enqueue_async(durable.skill_workflow, request.to_data())
        return await self._result(handle, run_id)

    async def _result(self, handle: Any, run_id: str) -> dict[str, Any]:
        """The run's result: its event as soon as the worker sets it (a notification on
        Postgres), else, every ten polls, what the workflow says once it ended without
        one (it failed, or a worker of an earlier version ran it)."""
        from dbos import DBOS

        from nexflow.flows import durable

        while True:
            out = await DBOS.get_event_async(
                run_id, durable.SKILL_RESULT_EVENT, timeout_seconds=10 * self._poll_s
            )
            if out is not None:
                return dict(out)
            status = await handle.get_status()
            if status.status not in ("ENQUEUED", "PENDING", "DELAYED"):
                done: dict[str, Any] = await handle.get_result(polling_interval_sec=self._poll_s)
                return done

    async def _cancel(self, skill: str, run_id: str) -> None:
        from dbos import DBOS

        try:
            await DBOS.cancel_workflow_async(run_id)
        except Exception:  # DBOS's errors: the run finishes on the worker, unread
            log.warning("skill_hand_off_cancel_failed", skill=skill, run=run_id, exc_info=True)
        else:
            log.info("skill_hand_off_cancelled", skill=skill, run=run_id)


def serve_skills(tool: RunSkillTool, executor_id: str, *, watch_s: float = 0.5) -> None:
    """Make this process (a worker) run handed-off skills with ``tool``'s registry,
    runner and secrets. Call before the engine launches: DBOS resumes this executor's
    interrupted runs at launch. :func:`stop_serving` undoes it. Every ``watch_s`` while a
    skill runs, its run's status is read: a cancelled run (its turn was stopped) kills
    the skill."""
    from dbos import DBOS

    from nexflow.flows import durable

    async def run(data: dict[str, Any]) -> dict[str, Any]:
        request = SkillRequest.from_data(data)
        execute = tool.execute(
            request.skill, request.payload, request.context(), request.idempotency_key
        )
        try:
            result = await _unless_cancelled(execute, DBOS.workflow_id or "", watch_s)
        except _RunCancelled:
            log.info("skill_cancelled_on_worker", skill=request.skill, key=request.idempotency_key)
            return {"refused": f"skill {request.skill!r} was stopped"}
        except SkillError as exc:
            log.info("skill_refused_on_worker", skill=request.skill, error=exc.message)
            return {"refused": exc.message}
        log.info(
            "skill_ran_on_worker",
            skill=request.skill,
            ok=result.ok,
            key=request.idempotency_key,
            duration_ms=round(result.duration_ms, 1),
        )
        return {"result": result_to_data(result), "executor": executor_id}

    durable.bind_skills(run)


class _RunCancelled(Exception):
    """The run's workflow was cancelled while its skill ran."""


async def _unless_cancelled(
    execute: Awaitable[RunResult], run_id: str, watch_s: float
) -> RunResult:
    """``execute``'s result; cancelled (the skill's process group killed by the runner)
    and :class:`_RunCancelled` raised once the workflow ``run_id`` is cancelled."""
    from dbos import DBOS

    task = asyncio.ensure_future(execute)
    try:
        while True:
            done, _ = await asyncio.wait({task}, timeout=watch_s)
            if done:
                return task.result()
            try:
                status = await DBOS.get_workflow_status_async(run_id) if run_id else None
            except Exception:  # the database blinked: the skill goes on, looked at again
                log.warning("skill_run_status_unreadable", run=run_id, exc_info=True)
                continue
            if status is not None and status.status == "CANCELLED":
                raise _RunCancelled(run_id)
    finally:
        if not task.done():  # the run was cancelled, or this step was (the worker stops)
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task


def stop_serving() -> None:
    from nexflow.flows import durable

    durable.bind_skills(None)


__all__ = [
    "SKILL_QUEUE",
    "SkillRequest",
    "WorkerSkills",
    "result_from_data",
    "result_to_data",
    "run_id_for",
    "serve_skills",
    "skill_queue",
    "stop_serving",
]
