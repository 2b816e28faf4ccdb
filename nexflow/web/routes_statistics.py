"""``GET /api/v1/statistics/{overview,invocations,flows}``: the caller's numbers.

Every route counts the caller's own activity; the owner adds ``?all=true`` for
everyone's (anyone else gets 403, as ``GET /api/v1/panels?all=true``). Days are UTC:
"today" starts at midnight UTC, "the last N days" at midnight UTC N-1 days ago. Tokens
and cost are the ``llm_usage`` rows the budget gate settles after every model call; tool
calls, skill runs, turns (``message_in``) and durations come from the audit log
(:mod:`nexflow.storage.stats` says what counts as a failure).
"""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any, Literal, get_args

from fastapi import APIRouter, Query, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field

from nexflow.storage.base import Stats
from nexflow.storage.stats import Activity, Invocations, ModelUsage, ToolUsage
from nexflow.web.app import WebServices, error_body
from nexflow.web.identity import caller_of, web_user

if TYPE_CHECKING:
    from nexflow.gateway.flows import FlowService

router = APIRouter()

Scope = Literal["mine", "all"]
CallSource = Literal["tool", "skill"]
FlowStatus = Literal["pending", "queued", "running", "completed", "failed", "paused", "cancelled"]
FLOW_STATUSES: tuple[FlowStatus, ...] = get_args(FlowStatus)
TOKEN_RUNS = 200  # flow statistics sum the tokens of this many latest runs
TOP_TOOLS = 5
MAX_DAYS = 90
_FORBIDDEN: dict[int | str, dict[str, Any]] = {
    403: {"description": "?all=true from a caller who is not the owner"}
}


class ModelTotals(BaseModel):
    llm_calls: int
    tokens_in: int
    tokens_out: int
    cost_usd: float


class Window(BaseModel):
    """One period's activity."""

    since: float = Field(description="Epoch seconds the period starts at (0: all time)")
    messages_in: int
    messages_out: int
    turns: int = Field(description="Completed turns")
    tool_calls: int
    tool_failures: int
    skill_runs: int
    skill_failures: int
    llm_calls: int
    tokens_in: int
    tokens_out: int
    cost_usd: float
    per_model: dict[str, ModelTotals]


class TopTool(BaseModel):
    name: str
    source: CallSource
    calls: int
    failures: int
    failure_rate: float


class Overview(BaseModel):
    scope: Scope
    day: str = Field(description="Today, UTC (YYYY-MM-DD)")
    today: Window
    week: Window = Field(description="The last 7 days, today included")
    total: Window = Field(description="All time")
    dead_letters: int = Field(description="Turns set aside after their last attempt")
    pending_approvals: int
    top_tools: list[TopTool] = Field(description=f"The {TOP_TOOLS} most called in the week")


class InvocationRow(BaseModel):
    day: str
    name: str
    source: CallSource
    calls: int
    failures: int
    mean_s: float | None = Field(description="Mean duration (None: none recorded)")
    p95_s: float | None = Field(description="95th percentile duration, nearest rank")


class InvocationsResponse(BaseModel):
    scope: Scope
    days: int
    since: float = Field(description="Epoch seconds of the first day's midnight, UTC")
    tool: str | None
    rows: list[InvocationRow] = Field(description="Per day, then per tool or skill")


class FlowStats(BaseModel):
    """Flow runs; zeros (and ``note``) while flows are not enabled."""

    scope: Scope
    runs: int = 0
    by_status: dict[FlowStatus, int] = Field(
        default_factory=lambda: dict.fromkeys(FLOW_STATUSES, 0)
    )
    by_flow: dict[str, int] = Field(default_factory=dict, description="Runs per flow")
    mean_duration_s: float | None = Field(
        None, description="Of finished runs: created to last update (None: none finished)"
    )
    tokens_in: int = Field(0, description=f"Of the latest {TOKEN_RUNS} runs")
    tokens_out: int = 0
    note: str | None = None


def _stats(request: Request) -> Stats:
    svc: WebServices = request.app.state.services
    return svc.storage


def _refused(request: Request, all: bool) -> JSONResponse | None:
    if all and caller_of(request).role != "owner":
        return JSONResponse(error_body("forbidden", "Only the owner sees everyone's."), 403)
    return None


async def _whose(request: Request, all: bool) -> str | None:
    return None if all else await web_user(request)


def _midnight(days_back: int) -> datetime:
    today = datetime.now(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
    return today - timedelta(days=days_back)


@router.get("/api/v1/statistics/overview", response_model=Overview, responses=_FORBIDDEN)
async def overview(request: Request, all: bool = False) -> Overview | JSONResponse:
    """Messages, turns, tool calls and failures, model calls, tokens and cost today, in
    the last 7 days and in all; dead letters, pending approvals and the top tools."""
    if (refused := _refused(request, all)) is not None:
        return refused
    storage, user_id = _stats(request), await _whose(request, all)
    today, week = _midnight(0), _midnight(6)
    windows: dict[str, Window] = {}
    for key, start in (("today", today), ("week", week), ("total", None)):
        since, first_day = (start.timestamp(), f"{start:%Y-%m-%d}") if start else (0.0, "")
        windows[key] = _window(since, await storage.activity(user_id, since, first_day))
    backlog = await storage.backlog(user_id, time.time())
    used = await storage.tool_usage(user_id, week.timestamp())
    top = sorted(used, key=lambda u: (-u.calls, u.name))[:TOP_TOOLS]
    return Overview(
        scope="all" if all else "mine",
        day=f"{today:%Y-%m-%d}",
        today=windows["today"],
        week=windows["week"],
        total=windows["total"],
        dead_letters=backlog.dead_letters,
        pending_approvals=backlog.pending_approvals,
        top_tools=[_top(u) for u in top],
    )


@router.get(
    "/api/v1/statistics/invocations", response_model=InvocationsResponse, responses=_FORBIDDEN
)
async def invocations(
    request: Request,
    days: int = Query(7, ge=1, le=MAX_DAYS, description="Days back, today included"),
    tool: str | None = Query(None, min_length=1, max_length=200, description="One tool"),
    all: bool = False,
) -> InvocationsResponse | JSONResponse:
    """Per UTC day and per tool (or skill): calls, failures, mean and p95 duration."""
    if (refused := _refused(request, all)) is not None:
        return refused
    since = _midnight(days - 1).timestamp()
    rows = await _stats(request).invocations(await _whose(request, all), since, tool)
    return InvocationsResponse(
        scope="all" if all else "mine",
        days=days,
        since=since,
        tool=tool,
        rows=[_row(r) for r in rows],
    )


@router.get("/api/v1/statistics/flows", response_model=FlowStats, responses=_FORBIDDEN)
async def flows(request: Request, all: bool = False) -> FlowStats | JSONResponse:
    """Flow runs by status and by flow, the mean duration of finished runs and the
    tokens of the latest runs (zeros and a ``note`` while flows are not enabled)."""
    if (refused := _refused(request, all)) is not None:
        return refused
    svc: WebServices = request.app.state.services
    scope: Scope = "all" if all else "mine"
    if svc.flows is None:
        return FlowStats(scope=scope, note="flows are not enabled yet")
    from nexflow.flows.errors import EngineUnavailable

    try:
        return await _flow_stats(svc.flows, scope, await _whose(request, all))
    except EngineUnavailable as exc:  # turned off in the config, or cannot start
        return FlowStats(scope=scope, note=exc.message)


async def _flow_stats(service: FlowService, scope: Scope, user_id: str | None) -> FlowStats:
    from nexflow.flows.errors import RunNotFound

    stats = await service.stats(user_id)
    runs = await service.runs(user_id or "", everyone=user_id is None)
    ended = [
        r.updated_at - r.created_at
        for r in runs
        if r.status in ("completed", "failed", "cancelled") and r.created_at and r.updated_at
    ]
    tokens_in = tokens_out = 0
    for r in runs[:TOKEN_RUNS]:
        try:
            run = await service.run(r.owner, r.run_id)
        except RunNotFound:  # removed meanwhile
            continue
        tokens_in += run.tokens_in
        tokens_out += run.tokens_out
    by_status = dict.fromkeys(FLOW_STATUSES, 0)
    for status, count in stats.by_status.items():
        key: FlowStatus = "running" if status == "waiting" else _flow_status(status)
        by_status[key] += count
    return FlowStats(
        scope=scope,
        runs=stats.total,
        by_status=by_status,
        by_flow=dict(stats.by_flow),
        mean_duration_s=round(sum(ended) / len(ended), 3) if ended else None,
        tokens_in=tokens_in,
        tokens_out=tokens_out,
    )


def _flow_status(status: str) -> FlowStatus:
    return next((s for s in FLOW_STATUSES if s == status), "pending")


def _totals(rows: tuple[ModelUsage, ...]) -> ModelTotals:
    return ModelTotals(
        llm_calls=sum(r.calls for r in rows),
        tokens_in=sum(r.tokens_in for r in rows),
        tokens_out=sum(r.tokens_out for r in rows),
        cost_usd=round(sum(r.cost_usd for r in rows), 6),
    )


def _window(since: float, a: Activity) -> Window:
    return Window(
        since=since,
        messages_in=a.messages_in,
        messages_out=a.messages_out,
        turns=a.turns,
        tool_calls=a.tool_calls,
        tool_failures=a.tool_failures,
        skill_runs=a.skill_runs,
        skill_failures=a.skill_failures,
        **_totals(a.models).model_dump(),
        per_model={m.model: _totals((m,)) for m in a.models},
    )


def _source(kind: str) -> CallSource:
    return "skill" if kind == "skill_run" else "tool"


def _top(u: ToolUsage) -> TopTool:
    return TopTool(
        name=u.name,
        source=_source(u.kind),
        calls=u.calls,
        failures=u.failures,
        failure_rate=u.failure_rate,
    )


def _row(r: Invocations) -> InvocationRow:
    return InvocationRow(
        day=r.day,
        name=r.name,
        source=_source(r.kind),
        calls=r.calls,
        failures=r.failures,
        mean_s=r.mean_s,
        p95_s=r.p95_s,
    )
