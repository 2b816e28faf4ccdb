"""The caller's reminders over HTTP (GraphStudio's dashboard lists and cancels them).

- ``GET /api/v1/reminders`` — the caller's reminders, soonest first
- ``DELETE /api/v1/reminders/{id}`` — cancel one; another user's id is 404, like a
  reminder that does not exist (or fired meanwhile)

Reminders are made in a chat (``/remind``, or the model's reminder tools); see
docs/reminders.md.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel

from nexflow.tasks.errors import ReminderNotFound
from nexflow.tasks.model import Kind, Reminder
from nexflow.web.app import WebServices, error_body
from nexflow.web.identity import web_user
from nexflow.web.models_common import error

router = APIRouter()
_ERRORS: dict[int | str, dict[str, Any]] = {
    404: error("No such reminder of the caller's"),
    503: error("Reminders are not running in this gateway"),
}


class ReminderOut(BaseModel):
    id: str
    text: str
    kind: Kind
    schedule: str  # the ISO due time (once) or the crontab expression (cron)
    timezone: str
    channel: str  # where it is delivered
    created_at: datetime
    next_run: datetime | None  # None only while it is being delivered


def _out(r: Reminder) -> ReminderOut:
    return ReminderOut(
        id=r.id,
        text=r.text,
        kind=r.kind,
        schedule=r.schedule,
        timezone=r.timezone,
        channel=r.target.channel,
        created_at=r.created_at,
        next_run=r.next_run,
    )


def _unavailable() -> JSONResponse:
    return JSONResponse(error_body("unavailable", "Reminders are not running."), 503)


@router.get("/api/v1/reminders", response_model=list[ReminderOut], responses=_ERRORS)
async def list_reminders(request: Request) -> list[ReminderOut] | JSONResponse:
    svc: WebServices = request.app.state.services
    if svc.reminders is None:
        return _unavailable()
    return [_out(r) for r in await svc.reminders.list_for(await web_user(request))]


@router.delete("/api/v1/reminders/{reminder_id}", response_model=ReminderOut, responses=_ERRORS)
async def cancel_reminder(reminder_id: str, request: Request) -> ReminderOut | JSONResponse:
    svc: WebServices = request.app.state.services
    if svc.reminders is None:
        return _unavailable()
    try:
        return _out(await svc.reminders.cancel(await web_user(request), reminder_id))
    except ReminderNotFound as exc:
        return JSONResponse(error_body("not_found", str(exc)), 404)
