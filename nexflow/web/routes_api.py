"""HTTP endpoints: chat, sessions, status, health, metrics, the chat page."""

from __future__ import annotations

import time
from typing import Any

from fastapi import APIRouter, Header, Request, Response
from fastapi.exceptions import RequestValidationError
from fastapi.responses import FileResponse, HTMLResponse, JSONResponse
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from nexflow import __version__
from nexflow.bus.events import InboundEvent
from nexflow.web.app import WebServices, error_body
from nexflow.web.identity import OWNER_SENDER, caller_of, web_user
from nexflow.web.timeline import session_timeline

router = APIRouter()
WEB_SENDER = OWNER_SENDER  # the owner's sender id on the web channel (nexflow.web.identity)


def services(request: Request) -> WebServices:
    svc: WebServices = request.app.state.services
    return svc


class ChatRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    message: str = Field(description="What the user says")
    session: str | None = Field(None, max_length=128, description="Continue this session")


@router.post(
    "/api/v1/chat",
    openapi_extra={
        "requestBody": {
            "required": True,
            "content": {"application/json": {"schema": ChatRequest.model_json_schema()}},
        }
    },
)
async def chat(
    request: Request, idempotency_key: str | None = Header(None, max_length=200)
) -> Response:
    """Send a message and wait for the reply, as the caller (the owner or a web user). The
    body is JSON (the guard refuses other content types with 415)."""
    svc = services(request)
    started = time.perf_counter()
    try:
        body = ChatRequest.model_validate_json(await request.body())
    except ValidationError as exc:
        raise RequestValidationError(exc.errors()) from exc
    event = InboundEvent(
        channel="web",
        chat_id=body.session or "web",
        sender_id=caller_of(request).sender_id,
        message=body.message,
        session_id=body.session,
        external_id=f"http:{idempotency_key}" if idempotency_key else None,
    )
    accepted = await svc.gateway.publish(event)
    if accepted.immediate is not None:  # answered in the publish chain (e.g. /confirm)
        return JSONResponse(
            {
                "session": accepted.session_id or body.session,
                "message_id": None,
                "status": "done",
                "reply": accepted.immediate,
                "tool_calls": [],
            }
        )
    summary = await svc.gateway.wait_reply(
        accepted.inbox_id, svc.config.reply_timeout_s, duplicate=accepted.duplicate
    )
    total = time.perf_counter() - started
    if summary is None:
        return JSONResponse(
            {
                "session": accepted.session_id,
                "message_id": accepted.inbox_id,
                "status": "pending",
                "reply": None,
                "tool_calls": [],
            },
            status_code=202,
        )
    payload: dict[str, Any] = {
        "session": summary.session_id or accepted.session_id,
        "message_id": accepted.inbox_id,
        "status": "done",
        "reply": summary.reply,
        "tool_calls": summary.tool_calls,
    }
    if summary.error:
        payload["error"] = summary.error
    timing = f"llm;dur={summary.llm_seconds * 1000:.3f}, total;dur={total * 1000:.3f}"
    return JSONResponse(payload, headers={"Server-Timing": timing})


@router.get("/api/v1/sessions")
async def list_sessions(request: Request, limit: int = 50) -> list[dict[str, Any]]:
    """The caller's sessions, newest first."""
    svc = services(request)
    records = await svc.storage.list_sessions(await web_user(request), max(1, min(limit, 500)))
    return [
        {
            "id": s.id,
            "channel": s.channel,
            "title": s.title,
            "created_at": s.created_at,
            "updated_at": s.updated_at,
        }
        for s in records
    ]


@router.get("/api/v1/sessions/{session_id}", response_model=None)
async def get_session(
    session_id: str, request: Request, limit: int = 200
) -> dict[str, Any] | JSONResponse:
    svc = services(request)
    session = await svc.storage.get_session(session_id)
    if session is None or session.user_id != await web_user(request):  # another's: unknown
        return JSONResponse(
            error_body("unknown_session", f"There is no session {session_id!r}."), 404
        )
    limit = max(1, min(limit, 5000))
    history = await svc.storage.history(session_id, limit)
    return {
        "id": session.id,
        "channel": session.channel,
        "created_at": session.created_at,
        "updated_at": session.updated_at,
        "messages": [
            {
                "role": m.role,
                "content": m.content,
                "created_at": m.created_at,
                **({"tool_calls": m.tool_calls} if m.tool_calls else {}),
                **({"name": m.name} if m.name else {}),
            }
            for m in history
        ],
        "timeline": await session_timeline(svc, session, limit),  # what the page draws
    }


@router.get("/api/v1/status")
async def status(request: Request) -> dict[str, Any]:
    svc = services(request)
    caller = caller_of(request)
    svc.models.warm()  # the chat page asks for status on load: a message usually follows
    model = await svc.models.status()
    return {
        "version": __version__,
        "model": {
            "configured": model.configured,
            "name": model.model,
            "source": model.source,
            "help": model.help,
        },
        "queue_depth": svc.gateway.queue_depth,
        "auth": svc.auth.enabled,
        "caller": {"role": caller.role, "name": caller.name, "via": caller.via},
    }


@router.get("/health")
async def health() -> dict[str, str]:
    return {"status": "ok", "version": __version__}


@router.get("/ready")
async def ready(request: Request) -> JSONResponse:
    ok = await services(request).storage.ping()
    return JSONResponse({"status": "ready" if ok else "storage unavailable"}, 200 if ok else 503)


@router.get("/metrics")
@router.get("/api/v1/metrics")
async def metrics(request: Request) -> Response:
    registry = services(request).metrics.registry
    return Response(generate_latest(registry), media_type=CONTENT_TYPE_LATEST)


@router.get("/", response_model=None)
async def index(request: Request) -> Response:
    static = services(request).static_dir
    page = static / "index.html" if static else None
    if page is None or not page.is_file():
        return HTMLResponse(
            "<h1>Nexflow</h1><p>The web UI is not installed; the API is at /docs.</p>"
        )
    return FileResponse(page, media_type="text/html")
