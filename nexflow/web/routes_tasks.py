"""``GET /api/v1/tasks``, ``GET /api/v1/tasks/{id}``, ``POST /api/v1/tasks/{id}/control``:
the caller's flow runs as tasks with stages.

A task is a flow run (:class:`~nexflow.flows.RunStatus`); its stages are the run's
nodes. Another user's task answers exactly like a missing one (404); the owner adds
``?all=true`` to the list for everyone's (anyone else gets 403, as
``GET /api/v1/panels?all=true``). Control: ``pause``, ``resume``, ``stop``, ``retry``
(a failed run: a new run from its first failed node) and ``fork`` with ``from`` (a new
run from that node, the steps before it reused); the answer names the run that goes on.
``?status=dead`` lists the dead-lettered tasks (failed after a node ran all of its tries;
``docs/flows.md#dead-letters``) with ``dead_at`` naming that node; ``retry`` re-queues one.
Errors are mapped by :func:`nexflow.web.routes_flows.install`'s handler.
"""

from __future__ import annotations

from typing import Any, Literal

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field, model_validator

from nexflow.flows.status import NodeStatus, RunState, RunStatus, RunSummary
from nexflow.gateway.flows import dead_node
from nexflow.web.app import error_body
from nexflow.web.identity import caller_of, web_user
from nexflow.web.models_common import INVALID_REQUEST, error
from nexflow.web.routes_flows import flows

router = APIRouter()
_FINISHED = ("completed", "failed", "skipped")
# The bodies of routes_flows.install's handler (FlowError) and of the app's 422.
ERRORS: dict[int | str, dict[str, Any]] = {
    422: INVALID_REQUEST,
    503: error("Flows are disabled or the engine is unavailable"),
}
_NOT_FOUND: dict[int | str, dict[str, Any]] = {
    **ERRORS,
    404: error("No such task of the caller's (another user's is the same)"),
}


class TaskSummaryOut(BaseModel):
    """A task in a list (coarse status: ``waiting`` shows as ``running``)."""

    id: str
    flow: str
    owner: str = Field(description="The user id it belongs to")
    status: RunState
    priority: int = Field(description="1-5, 5 most urgent")
    created_at: float | None = Field(description="Epoch seconds")
    updated_at: float | None
    forked_from: str | None = Field(description="The run it was retried or forked from")
    dead_at: str | None = Field(
        None, description="?status=dead: the node that ran all of its tries and failed"
    )
    error: str | None = Field(None, description="?status=dead: that node's error")


class TaskList(BaseModel):
    scope: Literal["mine", "all"]
    tasks: list[TaskSummaryOut] = Field(description="Newest first")


class StageOut(BaseModel):
    """One node of the run."""

    node: str
    type: str
    status: str = Field(
        description="pending, running, waiting, completed, failed, skipped, paused, cancelled"
    )
    attempts: int
    started_at: float | None
    finished_at: float | None
    duration_s: float | None
    tokens_in: int
    tokens_out: int
    tool_calls: int
    output_preview: str = Field(description="The output's first 200 characters")
    error: str | None
    progress: int = Field(description="100 once finished (completed, failed, skipped), else 0")
    untrusted: list[str] = Field(
        default_factory=list,
        description="Sources of untrusted output this node saw (they taint the nodes after it)",
    )


class OriginOut(BaseModel):
    channel: str
    chat_id: str
    session: str


class TaskOut(BaseModel):
    """A task with its stages."""

    id: str
    flow: str
    owner: str
    origin: OriginOut = Field(description="Where it was started; its cards go there")
    status: RunState
    priority: int
    created_at: float | None
    updated_at: float | None
    progress: int = Field(description="Finished stages / all stages, 0-100")
    tokens_in: int
    tokens_out: int
    error: str | None
    forked_from: str | None
    output: dict[str, Any] | None = Field(description="Node outputs once completed")
    stages: list[StageOut]
    untrusted: list[str] = Field(
        default_factory=list,
        description="What made the run untrusted: its inputs' source (a webhook, a panel), "
        "then its nodes'. Writes after them need an approval node on the path",
    )


class Control(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    action: Literal["pause", "resume", "stop", "retry", "fork"]
    from_node: str | None = Field(
        None, alias="from", max_length=200, description="fork: the node to run again from"
    )

    @model_validator(mode="after")
    def _from_with_fork(self) -> Control:
        if (self.action == "fork") != (self.from_node is not None):
            raise ValueError('"from" (a node id) goes with "fork", and only with it')
        return self


class ControlOut(BaseModel):
    action: str
    id: str = Field(description="The task acted on")
    run_id: str = Field(description="The run that goes on: a new one after retry or fork")
    task: TaskOut = Field(description="That run now")


def summary_out(r: RunSummary | RunStatus, **dead: str | None) -> TaskSummaryOut:
    """A task list item; ``dead``: ``dead_at`` and ``error`` for a dead-lettered run."""
    return TaskSummaryOut(
        id=r.run_id,
        flow=r.flow,
        owner=r.owner,
        status=r.status,
        priority=r.priority,
        created_at=r.created_at,
        updated_at=r.updated_at,
        forked_from=r.forked_from,
        **dead,
    )


def dead_out(r: RunStatus) -> TaskSummaryOut:
    node = dead_node(r)
    error = next((n.error for n in r.nodes if n.node == node), None)
    return summary_out(r, dead_at=node, error=error)


def stage_out(n: NodeStatus) -> StageOut:
    return StageOut(
        node=n.node,
        type=n.type,
        status=n.status,
        attempts=n.attempts,
        started_at=n.started_at,
        finished_at=n.finished_at,
        duration_s=n.duration_s,
        tokens_in=n.tokens_in,
        tokens_out=n.tokens_out,
        tool_calls=n.tool_calls,
        output_preview=n.output_preview,
        error=n.error,
        progress=100 if n.status in _FINISHED else 0,
        untrusted=list(n.untrusted),
    )


def task_out(r: RunStatus) -> TaskOut:
    return TaskOut(
        id=r.run_id,
        flow=r.flow,
        owner=r.owner,
        origin=OriginOut(
            channel=r.origin.channel, chat_id=r.origin.chat_id, session=r.origin.session
        ),
        status=r.status,
        priority=r.priority,
        created_at=r.created_at,
        updated_at=r.updated_at,
        progress=r.progress,
        tokens_in=r.tokens_in,
        tokens_out=r.tokens_out,
        error=r.error,
        forked_from=r.forked_from,
        output=r.output,
        stages=[stage_out(n) for n in r.nodes],
        untrusted=list(r.untrusted),
    )


@router.get(
    "/api/v1/tasks",
    response_model=TaskList,
    responses={**ERRORS, 403: error("?all=true from a caller who is not the owner")},
)
async def list_tasks(
    request: Request, all: bool = False, status: Literal["dead"] | None = None
) -> TaskList | JSONResponse:
    """The caller's tasks, newest first; the owner adds ``?all=true`` for everyone's;
    ``?status=dead`` for the dead letters only (re-queue one with ``retry``)."""
    service = flows(request)
    if all and caller_of(request).role != "owner":
        return JSONResponse(error_body("forbidden", "Only the owner sees everyone's."), 403)
    if status == "dead":
        dead = await service.dead(await web_user(request), everyone=all)
        return TaskList(scope="all" if all else "mine", tasks=[dead_out(r) for r in dead])
    runs = await service.runs(await web_user(request), everyone=all)
    return TaskList(scope="all" if all else "mine", tasks=[summary_out(r) for r in runs])


@router.get("/api/v1/tasks/{task_id}", response_model=TaskOut, responses=_NOT_FOUND)
async def get_task(task_id: str, request: Request) -> TaskOut:
    """The task with its stages, progress, tokens and error."""
    service = flows(request)
    return task_out(await service.run(await web_user(request), task_id))


@router.post(
    "/api/v1/tasks/{task_id}/control",
    response_model=ControlOut,
    responses={**_NOT_FOUND, 409: error("The action does not fit the task's state")},
)
async def control(task_id: str, body: Control, request: Request) -> ControlOut:
    """Pause, resume, stop, retry or fork (``{"action": "fork", "from": "<node>"}``)."""
    service = flows(request)
    user_id = await web_user(request)
    if body.action == "fork":
        assert body.from_node is not None  # checked by Control
        run_id = await service.fork(user_id, task_id, body.from_node)
    else:
        run_id = await service.control(user_id, task_id, body.action)
    task = task_out(await service.run(user_id, run_id))
    return ControlOut(action=body.action, id=task_id, run_id=run_id, task=task)
