"""What GraphStudio's dashboard and users page read that no other route answers.

* ``GET /api/v1/dashboard/queues`` — inbox (turns) and outbox (replies) rows per status,
  dead letters and the gateway's queue depth;
* ``GET /api/v1/dashboard/usage?days=N`` — model calls, tokens and cost per UTC day and
  model (the ``llm_usage`` rows the budget gate settles; reminder charges left out);
* ``GET /api/v1/users`` — owner only: every user with their identities on each channel,
  role, skill permissions, budget use against the limits and model use in 30 days.

The first two count the caller's own; the owner adds ``?all=true`` for everyone's (anyone
else gets 403, as the statistics routes).
"""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta
from typing import Any, Literal, Protocol

from fastapi import APIRouter, Query, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field

from nexflow.storage.base import Dashboard, Stats
from nexflow.web.app import WebServices, error_body
from nexflow.web.identity import caller_of, web_user
from nexflow.web.models_common import INVALID_REQUEST, error

router = APIRouter()
Scope = Literal["mine", "all"]
USAGE_DAYS = 30  # the users page's window
_FORBIDDEN: dict[int | str, dict[str, Any]] = {
    403: error("?all=true (or the users list) from a caller who is not the owner"),
    422: INVALID_REQUEST,
}


class QueueSummary(BaseModel):
    scope: Scope
    inbox: dict[str, int] = Field(description="Turns per status (pending, running, done, dead)")
    outbox: dict[str, int] = Field(description="Replies per status (pending, parked, ...)")
    dead_letters: int
    pending_approvals: int
    queue_depth: int = Field(description="Turns the gateway holds in memory now")


class UsageDayModel(BaseModel):
    day: str
    model: str
    calls: int
    tokens_in: int
    tokens_out: int
    cost_usd: float


class UsageByDay(BaseModel):
    scope: Scope
    days: int
    first_day: str = Field(description="YYYY-MM-DD, UTC")
    rows: list[UsageDayModel] = Field(
        description="Per day, then per model; days without use absent"
    )


class UserIdentity(BaseModel):
    channel: str
    external_id: str
    created_at: float


class UserBudget(BaseModel):
    today: int = Field(description="Tokens used today (UTC)")
    month: int = Field(description="Tokens used this month (UTC)")
    daily_limit: int | None = Field(description="None: unlimited")
    monthly_limit: int | None = Field(description="None: unlimited")


class UserUsage(BaseModel):
    calls: int
    tokens_in: int
    tokens_out: int
    cost_usd: float


class UserOut(BaseModel):
    id: str
    name: str
    role: str
    lang: str | None
    created_at: float
    identities: list[UserIdentity]
    sessions: int
    permissions: list[str]
    budget: UserBudget
    usage: UserUsage = Field(description=f"Model use in the last {USAGE_DAYS} days")


class UserList(BaseModel):
    usage_days: int
    users: list[UserOut]


class DashboardStore(Dashboard, Stats, Protocol):
    """The dashboard's queries, and the backlog (dead letters, pending approvals)."""


def _svc(request: Request) -> WebServices:
    svc: WebServices = request.app.state.services
    return svc


def _store(request: Request) -> DashboardStore:
    return _svc(request).storage


def _refused(request: Request, all: bool) -> JSONResponse | None:
    if all and caller_of(request).role != "owner":
        return JSONResponse(error_body("forbidden", "Only the owner sees everyone's."), 403)
    return None


def _first_day(days: int) -> str:
    return f"{datetime.now(UTC) - timedelta(days=days - 1):%Y-%m-%d}"


@router.get("/api/v1/dashboard/queues", response_model=QueueSummary, responses=_FORBIDDEN)
async def queues(request: Request, all: bool = False) -> QueueSummary | JSONResponse:
    """Inbox and outbox rows per status, dead letters and pending approvals."""
    if (refused := _refused(request, all)) is not None:
        return refused
    svc = _svc(request)
    user_id = None if all else await web_user(request)
    store = _store(request)
    counts = await store.queue_counts(user_id)
    backlog = await store.backlog(user_id, time.time())
    return QueueSummary(
        scope="all" if all else "mine",
        inbox=counts.inbox,
        outbox=counts.outbox,
        dead_letters=backlog.dead_letters,
        pending_approvals=backlog.pending_approvals,
        queue_depth=svc.gateway.queue_depth,
    )


@router.get("/api/v1/dashboard/usage", response_model=UsageByDay, responses=_FORBIDDEN)
async def usage(
    request: Request,
    days: int = Query(14, ge=1, le=90, description="Days back, today included"),
    all: bool = False,
) -> UsageByDay | JSONResponse:
    """Model calls, tokens and cost per UTC day and per model."""
    if (refused := _refused(request, all)) is not None:
        return refused
    first = _first_day(days)
    rows = await _store(request).usage_per_day(None if all else await web_user(request), first)
    return UsageByDay(
        scope="all" if all else "mine",
        days=days,
        first_day=first,
        rows=[
            UsageDayModel(
                day=r.day,
                model=r.model,
                calls=r.calls,
                tokens_in=r.tokens_in,
                tokens_out=r.tokens_out,
                cost_usd=r.cost_usd,
            )
            for r in rows
        ],
    )


@router.get("/api/v1/users", response_model=UserList, responses=_FORBIDDEN)
async def users(request: Request) -> UserList | JSONResponse:
    """Every user: identities, role, permissions, budget and model use (owner only)."""
    if caller_of(request).role != "owner":
        return JSONResponse(error_body("forbidden", "Only the owner sees the users."), 403)
    svc = _svc(request)
    daily, monthly = svc.budgets.limits() if svc.budgets is not None else (None, None)
    out = []
    for u in await _store(request).users_overview(_first_day(USAGE_DAYS)):
        today, month = await svc.budgets.user_tokens(u.id) if svc.budgets else (0, 0)
        out.append(
            UserOut(
                id=u.id,
                name=u.name,
                role=u.role,
                lang=u.lang,
                created_at=u.created_at,
                identities=[
                    UserIdentity(
                        channel=i.channel, external_id=i.external_id, created_at=i.created_at
                    )
                    for i in u.identities
                ],
                sessions=u.sessions,
                permissions=sorted(svc.permissions.granted(u.role, u.id)),
                budget=UserBudget(
                    today=today, month=month, daily_limit=daily, monthly_limit=monthly
                ),
                usage=UserUsage(
                    calls=u.calls,
                    tokens_in=u.tokens_in,
                    tokens_out=u.tokens_out,
                    cost_usd=u.cost_usd,
                ),
            )
        )
    return UserList(usage_days=USAGE_DAYS, users=out)
