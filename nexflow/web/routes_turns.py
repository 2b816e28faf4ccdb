"""Dead letters over HTTP.

- ``GET /api/v1/dead-letters`` — the caller's dead letters; the owner adds ``?all=true``
  for everyone's (an explicit admin view, never the default)
- ``POST /api/v1/dead-letters/{id}/retry`` — run it again (attempts reset); the owner may
  retry anyone's, others only their own
"""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse

from nexflow.web.app import WebServices, error_body
from nexflow.web.identity import caller_of, web_user
from nexflow.web.models_common import INVALID_REQUEST, error
from nexflow.web.models_ops import DeadLetterOut, RetryQueued

router = APIRouter()


def _svc(request: Request) -> WebServices:
    svc: WebServices = request.app.state.services
    return svc


@router.get(
    "/api/v1/dead-letters",
    response_model=list[DeadLetterOut],
    responses={
        403: error("?all=true from a caller who is not the owner"),
        422: INVALID_REQUEST,
    },
)
async def dead_letters(
    request: Request, all: bool = False, limit: int = 100
) -> list[DeadLetterOut] | JSONResponse:
    """The caller's dead letters (the owner's ``?all=true``: everyone's)."""
    svc = _svc(request)
    if all and caller_of(request).role != "owner":
        return JSONResponse(error_body("forbidden", "Only the owner sees everyone's."), 403)
    user_id = None if all else await web_user(request)
    letters = await svc.storage.dead_letters(user_id, max(1, min(limit, 1000)))
    return [DeadLetterOut.model_validate(d.to_json()) for d in letters]


@router.post(
    "/api/v1/dead-letters/{inbox_id}/retry",
    response_model=RetryQueued,
    responses={404: error("No such dead letter of the caller's"), 422: INVALID_REQUEST},
)
async def retry(inbox_id: int, request: Request) -> RetryQueued | JSONResponse:
    """Run it again (attempts reset)."""
    svc = _svc(request)
    mine = await web_user(request)
    letter = await svc.storage.get_inbox(inbox_id)
    if (
        letter is None
        or letter.status != "dead"
        or (caller_of(request).role != "owner" and letter.event.user_id != mine)
    ):
        return JSONResponse(error_body("not_found", f"There is no dead letter {inbox_id}."), 404)
    item = await svc.storage.retry_dead(inbox_id)
    if item is None or not item.event.session_id:
        return JSONResponse(error_body("not_found", f"There is no dead letter {inbox_id}."), 404)
    svc.gateway.resume(item.event.session_id, item.id)
    return RetryQueued(id=inbox_id, status="pending")
