"""``GET/POST /api/v1/flows`` and ``POST /api/v1/flows/{name}/runs``: the caller's flows.

Flows are YAML files in the caller's workspace (``flows/<name>.yaml``, ``docs/flows.md``);
everything goes through :class:`~nexflow.gateway.flows.FlowService` as the caller's user.
Errors use the gateway's ``error_body``: an invalid flow is 422 with ``errors`` (each
``file:line:col: message``), an unknown flow 404, arguments that do not fit the flow's
inputs 422, an action that does not fit a run's state 409, flows disabled or the engine
unavailable 503. :func:`install` adds these routes, the task routes
(:mod:`nexflow.web.routes_tasks`) and the handler that maps the flows exceptions.
"""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING, Any

from fastapi import APIRouter, FastAPI, Request, Response
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field

from nexflow.flows.errors import (
    EngineUnavailable,
    FlowError,
    FlowInvalid,
    RunControlError,
    RunNotFound,
)
from nexflow.flows.host import Origin
from nexflow.web.app import WebServices, error_body
from nexflow.web.identity import web_user

if TYPE_CHECKING:
    from nexflow.gateway.flows import FlowService, FlowSummary

router = APIRouter()
NAME_PATTERN = r"^[a-z0-9][a-z0-9_-]{0,63}$"
MAX_YAML_CHARS = 256 * 1024
WEB_ORIGIN = Origin(channel="web", chat_id="web")  # runs started over HTTP have no chat

ERRORS: dict[int | str, dict[str, Any]] = {
    503: {"description": "Flows are disabled or the engine is unavailable"},
}


class FlowsDisabled(EngineUnavailable):
    """The gateway runs without a flow service."""


def flows(request: Request) -> FlowService:
    """The flow service, or 503 when this gateway has none."""
    svc: WebServices = request.app.state.services
    if svc.flows is None:
        raise FlowsDisabled("Flows are not enabled on this gateway.")
    return svc.flows


class FlowOut(BaseModel):
    """A flow file of the caller's; ``errors`` are ``file:line:col: message``."""

    name: str
    description: str
    path: str = Field(description="Where it lives in the workspace")
    valid: bool
    errors: list[str]
    next_run: datetime | None = Field(
        None, description="The next fire of its cron triggers (null without triggers)"
    )


class SaveFlow(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str = Field(pattern=NAME_PATTERN, description="Saved as flows/<name>.yaml")
    yaml: str = Field(max_length=MAX_YAML_CHARS, description="The flow's YAML source")


class StartRun(BaseModel):
    model_config = ConfigDict(extra="forbid")

    args: dict[str, Any] = Field(default_factory=dict, description="The flow's inputs")
    priority: int = Field(3, ge=1, le=5, description="1-5, 5 most urgent")


class RunStarted(BaseModel):
    id: str = Field(description="The run (task) id")
    flow: str
    url: str = Field(description="Its status: GET /api/v1/tasks/{id}")


def flow_out(f: FlowSummary) -> FlowOut:
    return FlowOut(
        name=f.name,
        description=f.description,
        path=f.path,
        valid=f.valid,
        errors=list(f.errors),
        next_run=f.next_run,
    )


@router.get("/api/v1/flows", response_model=list[FlowOut], responses=ERRORS)
async def list_flows(request: Request) -> list[FlowOut]:
    """The caller's flows, each with its validity and errors."""
    service = flows(request)
    return [flow_out(f) for f in await service.list_flows(await web_user(request))]


@router.post(
    "/api/v1/flows",
    response_model=FlowOut,
    responses={**ERRORS, 422: {"description": "Invalid YAML or flow: `errors` lists them"}},
)
async def save_flow(body: SaveFlow, request: Request) -> FlowOut:
    """Save ``flows/<name>.yaml`` in the caller's workspace after validating it."""
    service = flows(request)
    return flow_out(await service.save_flow(await web_user(request), body.name, body.yaml))


@router.post(
    "/api/v1/flows/{name}/runs",
    status_code=201,
    response_model=RunStarted,
    responses={
        **ERRORS,
        404: {"description": "No such flow"},
        422: {"description": "Arguments that do not fit the flow's inputs"},
    },
)
async def start_run(
    name: str, request: Request, response: Response, body: StartRun | None = None
) -> RunStarted | JSONResponse:
    """Start a run of the caller's flow; 201 with the run id and its ``Location``."""
    service = flows(request)
    body = body or StartRun()
    user_id = await web_user(request)
    try:
        run_id = await service.start(user_id, name, body.args, WEB_ORIGIN, priority=body.priority)
    except RunControlError as exc:  # the engine's refusal of the arguments
        return JSONResponse(error_body("invalid_args", exc.message), 422)
    url = f"/api/v1/tasks/{run_id}"
    response.headers["Location"] = url
    return RunStarted(id=run_id, flow=name, url=url)


def _status(exc: FlowError) -> tuple[int, str]:
    from nexflow.gateway.flows import FlowArgsError, FlowNotFound

    match exc:
        case FlowsDisabled():
            return 503, "flows_disabled"
        case EngineUnavailable():
            return 503, "flows_unavailable"
        case FlowNotFound():
            return 404, "unknown_flow"
        case RunNotFound():
            return 404, "unknown_task"
        case FlowInvalid():
            return 422, "invalid_flow"
        case FlowArgsError():
            return 422, "invalid_args"
        case RunControlError():
            return 409, "not_now"
    return 400, "flow_error"


def install(app: FastAPI) -> None:
    """Add the flow and task routes and the handler for the flows exceptions."""
    from nexflow.web import routes_tasks

    app.include_router(router)
    app.include_router(routes_tasks.router)

    @app.exception_handler(FlowError)
    async def flow_error(_: Request, exc: FlowError) -> JSONResponse:
        status, code = _status(exc)
        body: dict[str, Any] = error_body(code, exc.message)
        if isinstance(exc, FlowInvalid):
            body["errors"] = [str(i) for i in exc.issues]
            body["error"]["message"] = f"The flow is invalid ({len(exc.issues)} problem(s))."
        return JSONResponse(body, status)
