"""``/api/v1/agents``: the caller's named agents, invoked on their own.

Agents are ``agents/<name>.yaml`` in the caller's workspace (``docs/flows.md``,
"Agents"); everything goes through :class:`~nexflow.gateway.agents.AgentService` as the
caller's user. An unknown agent (or another user's) is 404, an invalid agent file 422
with ``errors`` (each ``file:line:col: message``), agents disabled 503.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field

from nexflow.flows.agents import AgentNotFound
from nexflow.flows.errors import EngineUnavailable, FlowInvalid
from nexflow.web.app import WebServices, error_body
from nexflow.web.identity import web_user

if TYPE_CHECKING:
    from nexflow.gateway.agents import AgentService, AgentSummary
    from nexflow.storage.repo_agents import AgentInvocation

router = APIRouter()
MAX_INPUT_CHARS = 100_000
ERRORS: dict[int | str, dict[str, Any]] = {
    404: {"description": "No such agent"},
    503: {"description": "Agents are disabled or the workspaces unavailable"},
}


class AgentsDisabled(EngineUnavailable):
    """The gateway runs without an agent service."""


def agents(request: Request) -> AgentService:
    svc: WebServices = request.app.state.services
    if svc.agents is None:
        raise AgentsDisabled("Agents are not enabled on this gateway.")
    return svc.agents


class AgentOut(BaseModel):
    """An agent file of the caller's; ``errors`` are ``file:line:col: message``."""

    name: str
    description: str
    path: str = Field(description="Where it lives in the workspace")
    valid: bool
    errors: list[str]
    route: str | None = None
    tools: list[str] | None = Field(None, description="Allowlist; null: the default toolset")
    budget_tokens: int | None = None


class Invoke(BaseModel):
    model_config = ConfigDict(extra="forbid")

    input: str = Field(min_length=1, max_length=MAX_INPUT_CHARS)


class InvocationOut(BaseModel):
    """One recorded invocation; ``source`` is ``api`` or ``flow:<run>:<node>``."""

    id: str
    agent: str
    source: str
    input: str
    output: str | None
    status: str = Field(description="ok or error")
    error: str | None
    duration_s: float
    tokens_in: int
    tokens_out: int
    created_at: float


def agent_out(a: AgentSummary) -> AgentOut:
    return AgentOut(
        name=a.name,
        description=a.description,
        path=a.path,
        valid=a.valid,
        errors=list(a.errors),
        route=a.route,
        tools=None if a.tools is None else list(a.tools),
        budget_tokens=a.budget_tokens,
    )


def invocation_out(i: AgentInvocation) -> InvocationOut:
    return InvocationOut(
        id=i.id,
        agent=i.agent,
        source=i.source,
        input=i.input,
        output=i.output,
        status=i.status,
        error=i.error,
        duration_s=i.duration_s,
        tokens_in=i.tokens_in,
        tokens_out=i.tokens_out,
        created_at=i.created_at,
    )


def _refused(exc: AgentNotFound | FlowInvalid) -> JSONResponse:
    if isinstance(exc, AgentNotFound):
        return JSONResponse(error_body("unknown_agent", exc.message), 404)
    body: dict[str, Any] = error_body(
        "invalid_agent", f"The agent is invalid ({len(exc.issues)} problem(s))."
    )
    body["errors"] = [str(i) for i in exc.issues]
    return JSONResponse(body, 422)


@router.get("/api/v1/agents", response_model=list[AgentOut], responses=ERRORS)
async def list_agents(request: Request) -> list[AgentOut]:
    """The caller's agents, each with its validity and errors."""
    service = agents(request)
    return [agent_out(a) for a in await service.list_agents(await web_user(request))]


@router.post(
    "/api/v1/agents/{name}/invoke",
    response_model=InvocationOut,
    responses={**ERRORS, 422: {"description": "Invalid agent file: `errors` lists them"}},
)
async def invoke(name: str, body: Invoke, request: Request) -> InvocationOut | JSONResponse:
    """One turn of the caller's agent on ``input``; the recorded invocation (a failed
    turn is ``status: error`` with its ``error``)."""
    service = agents(request)
    try:
        return invocation_out(await service.invoke(await web_user(request), name, body.input))
    except (AgentNotFound, FlowInvalid) as exc:
        return _refused(exc)


@router.get(
    "/api/v1/agents/{name}/invocations", response_model=list[InvocationOut], responses=ERRORS
)
async def invocations(name: str, request: Request) -> list[InvocationOut] | JSONResponse:
    """The caller's invocations of their agent, newest first."""
    service = agents(request)
    try:
        found = await service.invocations(await web_user(request), name)
    except AgentNotFound as exc:
        return _refused(exc)
    return [invocation_out(i) for i in found]
