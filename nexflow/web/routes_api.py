"""HTTP endpoints: chat, sessions, status, health, metrics, the chat page."""

from __future__ import annotations

import time
from typing import Any

from fastapi import APIRouter, Header, Query, Request, Response
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from nexflow import __version__
from nexflow.bus.events import InboundEvent
from nexflow.orchestrator.tool_labels import ToolLabeler
from nexflow.storage.base import SessionRecord
from nexflow.tools.base import ToolContext, ToolSpec
from nexflow.web.app import WebServices, error_body
from nexflow.web.identity import OWNER_SENDER, caller_of, web_user
from nexflow.web.models_chat import (
    CallerInfo,
    ChatReply,
    GatewayStatus,
    Health,
    ModelState,
    Readiness,
    SessionDetail,
)
from nexflow.web.models_common import INVALID_REQUEST, error
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
    response_model=ChatReply,
    response_model_exclude_unset=True,  # ``error`` only when the turn failed
    responses={
        202: {"model": ChatReply, "description": "Not answered in time: status pending"},
        422: INVALID_REQUEST,
    },
    openapi_extra={
        "requestBody": {
            "required": True,
            "content": {"application/json": {"schema": ChatRequest.model_json_schema()}},
        }
    },
)
async def chat(
    request: Request, response: Response, idempotency_key: str | None = Header(None, max_length=200)
) -> ChatReply:
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
        return ChatReply(
            session=accepted.session_id or body.session,
            message_id=None,
            status="done",
            reply=accepted.immediate,
            tool_calls=[],
        )
    summary = await svc.gateway.wait_reply(
        accepted.inbox_id, svc.config.reply_timeout_s, duplicate=accepted.duplicate
    )
    total = time.perf_counter() - started
    if summary is None:
        response.status_code = 202
        return ChatReply(
            session=accepted.session_id,
            message_id=accepted.inbox_id,
            status="pending",
            reply=None,
            tool_calls=[],
        )
    reply = ChatReply(
        session=summary.session_id or accepted.session_id,
        message_id=accepted.inbox_id,
        status="done",
        reply=summary.reply,
        tool_calls=summary.tool_calls,
    )
    if summary.error:
        reply.error = summary.error  # set only then: the key is absent otherwise
    timing = f"llm;dur={summary.llm_seconds * 1000:.3f}, total;dur={total * 1000:.3f}"
    response.headers["Server-Timing"] = timing
    return reply


class SessionItem(BaseModel):
    """One conversation of ``GET /api/v1/sessions``."""

    id: str
    title: str = Field(description="The first thing the user said, trimmed")
    channel: str
    created_at: float
    updated_at: float
    messages: int = Field(description="How many messages the user and the assistant wrote")


class StopResult(BaseModel):
    stopped: bool = Field(description="A running turn was stopped")
    message_id: int | None = Field(None, description="The inbox id of the stopped turn")


@router.get("/api/v1/sessions", response_model=list[SessionItem])
async def list_sessions(
    request: Request,
    limit: int = 50,
    q: str | None = Query(None, max_length=200, description="Only those whose text has this"),
) -> list[SessionItem]:
    """The caller's conversations, newest first; ``q`` searches their messages' text."""
    svc = services(request)
    found = await svc.storage.session_summaries(await web_user(request), q, max(1, min(limit, 500)))
    return [
        SessionItem(
            id=s.id,
            title=s.title,
            channel=s.channel,
            created_at=s.created_at,
            updated_at=s.updated_at,
            messages=s.messages,
        )
        for s in found
    ]


@router.post(
    "/api/v1/sessions/{session_id}/stop",
    response_model=StopResult,
    responses={404: {"description": "No such session (or another user's)"}},
)
async def stop_session(session_id: str, request: Request) -> StopResult | JSONResponse:
    """Stop the session's running turn (the chat's Stop button): the turn is done with
    what it streamed so far, its tabs get ``{"type": "stopped"}``, it never runs again."""
    svc = services(request)
    session, user_id = await svc.storage.get_session(session_id), await web_user(request)
    if session is None or session.user_id != user_id:  # another's: unknown
        return JSONResponse(
            error_body("unknown_session", f"There is no session {session_id!r}."), 404
        )
    inbox_id = await svc.gateway.stop_session(session_id, user_id)  # here or on its replica
    return StopResult(stopped=inbox_id is not None, message_id=inbox_id)


@router.get(
    "/api/v1/sessions/{session_id}",
    response_model=SessionDetail,
    response_model_exclude_unset=True,  # a timeline item's optional keys only when it has them
    responses={404: error("No such session (or another user's)"), 422: INVALID_REQUEST},
)
async def get_session(
    session_id: str, request: Request, limit: int = 200
) -> SessionDetail | JSONResponse:
    """The session's messages and its ``timeline`` as the chat draws it (oldest first)."""
    svc = services(request)
    session = await svc.storage.get_session(session_id)
    if session is None or session.user_id != await web_user(request):  # another's: unknown
        return JSONResponse(
            error_body("unknown_session", f"There is no session {session_id!r}."), 404
        )
    limit = max(1, min(limit, 5000))
    history = await svc.storage.history(session_id, limit)
    return SessionDetail.model_validate(
        {
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
            "timeline": await _labelled(svc, session, await session_timeline(svc, session, limit)),
        }
    )


async def _labelled(
    svc: WebServices, session: SessionRecord, timeline: list[dict[str, Any]]
) -> list[dict[str, Any]]:
    """The timeline's tool calls with their ``label`` (as the live frames have them), in
    the user's language; panel titles from the caller's panel tools."""
    calls = [item for item in timeline if item.get("kind") == "tool_call"]
    if not calls:
        return timeline
    lang = await svc.storage.user_lang(session.user_id)

    def specs() -> list[ToolSpec]:
        if svc.panels is None:
            return []
        ctx = ToolContext(
            user_id=session.user_id,
            session_id=session.id,
            channel=session.channel,
            chat_id=session.chat_id,
        )
        return [tool.spec for tool in svc.panels.tools_for(ctx)]

    label = ToolLabeler(specs, lang)
    for item in calls:
        item["label"] = label(str(item.get("name", "")), str(item.get("arguments", "")))
    return timeline


@router.get("/api/v1/status", response_model=GatewayStatus)
async def status(request: Request) -> GatewayStatus:
    svc = services(request)
    caller = caller_of(request)
    svc.models.warm()  # the chat page asks for status on load: a message usually follows
    model = await svc.models.status()
    return GatewayStatus(
        version=__version__,
        model=ModelState(
            configured=model.configured, name=model.model, source=model.source, help=model.help
        ),
        queue_depth=svc.gateway.queue_depth,
        auth=svc.auth.enabled,
        caller=CallerInfo(role=caller.role, name=caller.name, via=caller.via),
        # The language the caller chose in a chat (/lang), which GraphStudio follows.
        language=await svc.storage.user_lang(await web_user(request)),
    )


@router.get("/health", response_model=Health)
async def health() -> Health:
    return Health(status="ok", version=__version__)


@router.get(
    "/ready",
    response_model=Readiness,
    responses={503: {"model": Readiness, "description": "The storage does not answer"}},
)
async def ready(request: Request, response: Response) -> Readiness:
    ok = await services(request).storage.ping()
    response.status_code = 200 if ok else 503
    return Readiness(status="ready" if ok else "storage unavailable")


@router.get("/metrics")
@router.get("/api/v1/metrics")
async def metrics(request: Request) -> Response:
    registry = services(request).metrics.registry
    return Response(generate_latest(registry), media_type=CONTENT_TYPE_LATEST)
