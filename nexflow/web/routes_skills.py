"""Skills over HTTP, and answering confirmation requests.

``POST /api/v1/skills/{name}`` runs a skill with the JSON body as its input. A skill that
needs confirmation is not run: the answer is 409 with ``confirmation`` (id, title, exact
detail, expiry); repeating the same call with the header ``Nexflow-Confirmation: <id>``
runs it. ``POST /api/v1/confirmations/{id}`` with ``{"approve": bool}`` answers a request
made during a chat turn.
"""

from __future__ import annotations

import hashlib
import json

from fastapi import APIRouter, Header, Request, Response
from fastapi.responses import JSONResponse
from pydantic import BaseModel

from nexflow.skills import SkillNotFound
from nexflow.skills.permissions import confirmation
from nexflow.tools.base import ToolContext
from nexflow.web.app import WebServices, error_body
from nexflow.web.identity import caller_of, web_user
from nexflow.web.models_common import INVALID_REQUEST, ErrorBody, error
from nexflow.web.models_ops import (
    ConfirmationAnswered,
    ConfirmationRequired,
    PendingConfirmation,
    SkillRefused,
    SkillRun,
    SkillSummary,
)

router = APIRouter()


def _svc(request: Request) -> WebServices:
    svc: WebServices = request.app.state.services
    return svc


@router.get("/api/v1/skills", response_model=list[SkillSummary])
async def list_skills(request: Request) -> list[SkillSummary]:
    """Every skill, available or not (``reason`` says why not)."""
    return [
        SkillSummary.model_validate(skill.summary())
        for skill in _svc(request).skills.registry.list()
    ]


@router.post(
    "/api/v1/skills/{name}",
    response_model=SkillRun,
    responses={
        403: {"model": SkillRefused, "description": "The caller may not run it"},
        404: error("No such skill"),
        409: {"model": ConfirmationRequired, "description": "It needs the caller's confirmation"},
        422: {
            "model": ErrorBody | SkillRefused,
            "description": "Input that is not a JSON object, or a skill that cannot run",
        },
    },
)
async def run_skill(
    name: str,
    request: Request,
    nexflow_confirmation: str | None = Header(None, max_length=64),
) -> SkillRun | JSONResponse:
    """Run a skill with the JSON body as its input."""
    svc = _svc(request)
    skills = svc.skills
    try:
        skill = skills.registry.get(name)
    except SkillNotFound as exc:
        return JSONResponse(error_body("unknown_skill", exc.message), 404)
    raw = await request.body()
    try:
        payload = json.loads(raw) if raw.strip() else {}
    except ValueError:
        return JSONResponse(
            error_body("invalid_request", "The body must be the skill's JSON input."), 422
        )
    if not isinstance(payload, dict):
        return JSONResponse(error_body("invalid_request", "The input must be a JSON object."), 422)
    user_id = await web_user(request)
    key = f"{name}:{hashlib.sha256(json.dumps(payload, sort_keys=True).encode()).hexdigest()}"
    confirmed = False
    if await skills.run_tool.needs_confirmation(skill, payload):
        if nexflow_confirmation and await svc.confirmations.consume(
            nexflow_confirmation, user_id, key
        ):
            confirmed = True
        else:
            title, detail = confirmation(skill, payload)
            pending = await svc.confirmations.issue(user_id, "web", title, detail, key)
            body = error_body(
                "confirmation_required",
                f"Repeat the call with the header 'Nexflow-Confirmation: {pending.id}' to run it.",
            )
            return JSONResponse({**body, "confirmation": pending.to_json()}, 409)

    async def approve(title: str, detail: str) -> bool:
        return confirmed

    ctx = ToolContext(
        user_id=user_id,
        session_id="",
        channel="web",
        chat_id="api",
        permissions=svc.permissions.granted(caller_of(request).role, user_id),
        confirm=approve if confirmed else None,
    )
    result = await skills.run_tool.run({"name": name, "input": payload}, ctx)
    if result.data is not None and "exit_code" in result.data:
        return SkillRun.model_validate(result.data)
    # Refused before running (permissions, availability): no exit code, no output.
    return JSONResponse(
        {"ok": False, "output": "", "error": result.content, "exit_code": None, "duration_ms": 0},
        403 if (result.data or {}).get("outcome") == "denied" else 422,
    )


class Answer(BaseModel):
    approve: bool


def _outcome(description: str) -> dict[str, object]:
    return {"model": ConfirmationAnswered, "description": description}


@router.post(
    "/api/v1/confirmations/{confirmation_id}",
    response_model=ConfirmationAnswered,
    responses={
        403: _outcome("not_yours: another user's request"),
        404: _outcome("unknown: no such request"),
        410: _outcome("expired: answered already or too late"),
        422: INVALID_REQUEST,
    },
)
async def answer_confirmation(
    confirmation_id: str, body: Answer, request: Request, response: Response
) -> ConfirmationAnswered:
    """Approve or decline a confirmation request (``approved`` or ``declined``: 200)."""
    svc = _svc(request)
    outcome = await svc.confirmations.answer(confirmation_id, await web_user(request), body.approve)
    status = {"approved": 200, "declined": 200, "unknown": 404, "not_yours": 403}.get(outcome, 410)
    response.status_code = status
    return ConfirmationAnswered(outcome=outcome)


@router.get("/api/v1/confirmations", response_model=list[PendingConfirmation])
async def pending_confirmations(request: Request) -> list[PendingConfirmation]:
    """The caller's pending confirmation requests."""
    svc = _svc(request)
    pending = await svc.confirmations.pending_for(await web_user(request))
    return [PendingConfirmation.model_validate(c.to_json()) for c in pending]
