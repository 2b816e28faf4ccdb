"""Pairing requests over HTTP (the owner's API, behind the gateway token).

``GET /api/v1/pairing`` lists the live requests; ``POST /api/v1/pairing/{channel}/{code}/
approve`` creates the user (role ``user``) and their identity and tells them in their
chat; ``…/deny`` drops the request. Both are audited (``kind = 'pairing'``).
"""

from __future__ import annotations

from typing import Any, Literal, Protocol

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse
from pydantic import TypeAdapter

from nexflow import i18n
from nexflow.bus.events import TextOut
from nexflow.storage.base import Identities, PairingRequest, Queue
from nexflow.web.app import WebServices, error_body
from nexflow.web.models_common import INVALID_REQUEST, error
from nexflow.web.models_ops import PairingApproved, PairingDecision, PairingDenied, PairingOut

router = APIRouter()
_DECISION: TypeAdapter[PairingApproved | PairingDenied] = TypeAdapter(PairingDecision)


class PairingStore(Identities, Queue, Protocol):
    """What a decision needs: the request and the user (identities), and the outbox for
    the notice (the gateway's storage; ``nexflow pair`` opens its own)."""


def _svc(request: Request) -> WebServices:
    svc: WebServices = request.app.state.services
    return svc


def pairing_json(item: PairingRequest) -> dict[str, Any]:
    return {
        "channel": item.channel,
        "code": item.code,
        "sender_id": item.sender_id,
        "chat_id": item.chat_id,
        "name": item.name,
        "lang": item.lang,
        "created_at": item.created_at,
        "expires_at": item.expires_at,
    }


async def decide(
    storage: PairingStore, channel: str, code: str, decision: Literal["approve", "deny"]
) -> dict[str, Any] | None:
    """Approve or deny; on approval the sender is told (queued in the outbox)."""
    if decision == "deny":
        denied = await storage.deny_pairing(channel, code)
        return None if denied is None else {**pairing_json(denied), "status": "denied"}
    approved = await storage.approve_pairing(channel, code)
    if approved is None:
        return None
    item, user_id = approved
    await storage.enqueue(
        TextOut(channel=channel, chat_id=item.chat_id, text=i18n.t(item.lang, "pairing_approved"))
    )
    return {**pairing_json(item), "status": "approved", "user_id": user_id}


@router.get("/api/v1/pairing", response_model=list[PairingOut])
async def list_pairing(request: Request) -> list[PairingOut]:
    requests = await _svc(request).storage.pairing_requests()
    return [PairingOut.model_validate(pairing_json(p)) for p in requests]


@router.post(
    "/api/v1/pairing/{channel}/{code}/{decision}",
    response_model=PairingDecision,
    responses={
        404: error("No live pairing request with that code (it may have expired)"),
        422: INVALID_REQUEST,
    },
)
async def answer_pairing(
    channel: str, code: str, decision: Literal["approve", "deny"], request: Request
) -> PairingApproved | PairingDenied | JSONResponse:
    """Approve (the sender becomes a user, told in their chat) or deny."""
    svc = _svc(request)
    result = await decide(svc.storage, channel, code, decision)
    if result is None:
        return JSONResponse(
            error_body(
                "unknown_pairing",
                f"There is no live pairing request {code!r} on {channel!r} (it may have expired).",
            ),
            404,
        )
    if svc.notify is not None:
        svc.notify()
    return _DECISION.validate_python(result)
