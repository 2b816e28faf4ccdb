"""The OpenAI-compatible API: ``POST /v1/chat/completions`` and ``GET /v1/models``.

A completion request is one chat turn through the real gateway (as ``POST /api/v1/chat``
does), so budgets, ownership, audit and the trust gate apply as in any chat. Only the
last user message is sent: the conversation is the Nexflow session (``X-Nexflow-Session``
header, else one session per ``user`` value and caller, else a new session per request),
and the session's own history is what the model sees. Nexflow runs its own tools
server-side; client-supplied ``tools`` / ``functions`` / ``tool_choice`` are refused (400).
A turn that parks on a confirmation answers with the confirmation's text; a turn not done
within ``web.reply_timeout_s`` answers 504 (type ``timeout``). Errors use OpenAI's shape,
``{"error": {"message", "type", "param", "code"}}``. docs/connectors.md has examples.
"""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

from fastapi import APIRouter, Header, Request, Response
from fastapi.responses import JSONResponse, StreamingResponse
from pydantic import ValidationError
from starlette.background import BackgroundTask

from nexflow.bus.errors import RateLimited, Rejected
from nexflow.bus.events import ConfirmationOut, InboundEvent, as_text
from nexflow.bus.streams import StreamEvent
from nexflow.gateway.turns import TurnSummary
from nexflow.web.app import WebServices
from nexflow.web.frames import ack_event, ack_topic
from nexflow.web.identity import caller_of, web_user
from nexflow.web.openai_schema import (
    ERROR_TYPES,
    AssistantMessage,
    ChatCompletion,
    ChatCompletionChunk,
    ChatCompletionRequest,
    ChatMessage,
    Choice,
    ChunkChoice,
    Delta,
    ModelCard,
    ModelList,
    OpenAIError,
    Usage,
)

router = APIRouter()
DEFAULT_MODEL = "nexflow"  # always listed: the gateway's own routing picks the profile
SESSION_HEADER = "X-Nexflow-Session"
OPENAI_CHAT = "openai"  # chat id of sessions made for requests without header or user
CLIENT_TOOL_FIELDS = ("tools", "functions", "tool_choice")


# -- routes --------------------------------------------------------------------------


def _services(request: Request) -> WebServices:
    svc: WebServices = request.app.state.services
    return svc


def _model_ids(svc: WebServices) -> list[str]:
    profiles = svc.models.profile_names()
    return [DEFAULT_MODEL, *(p for p in profiles if p != DEFAULT_MODEL)]


@router.get("/v1/models")
async def list_models(request: Request) -> ModelList:
    """The configured ``llm.models`` profiles, and ``nexflow`` (the gateway's default)."""
    return ModelList(data=[ModelCard(id=m) for m in _model_ids(_services(request))])


@router.post(
    "/v1/chat/completions",
    response_model=ChatCompletion,
    openapi_extra={
        "requestBody": {
            "required": True,
            "content": {"application/json": {"schema": ChatCompletionRequest.model_json_schema()}},
        }
    },
)
async def chat_completions(
    request: Request,
    session_header: str | None = Header(None, alias=SESSION_HEADER, max_length=128),
) -> Response:
    """One chat turn as the caller; ``stream: true`` answers ``text/event-stream``."""
    try:
        return await _complete(request, session_header)
    except OpenAIError as exc:
        return exc.response()


def _with_session(exc: OpenAIError, session_id: str) -> OpenAIError:
    exc.headers = {**(exc.headers or {}), SESSION_HEADER: session_id}
    return exc


async def _complete(request: Request, session_header: str | None) -> Response:
    svc = _services(request)
    body = _parse(await request.body())
    if body.model not in _model_ids(svc):
        raise OpenAIError(
            404,
            f"The model {body.model!r} does not exist; GET /v1/models lists them "
            f"({DEFAULT_MODEL!r} is the gateway's default).",
            param="model",
            code="model_not_found",
        )
    message = _last_user_text(body.messages)
    session_id = await _session(request, svc, session_header, body.user)
    turn = _Turn(svc, session_id, body.model, svc.streams.subscribe(session_id))
    try:
        await turn.publish(request, message)
    except BaseException:
        turn.close()
        raise
    headers = {SESSION_HEADER: session_id}
    if not body.stream:
        try:
            done = await turn.completion()
        except OpenAIError as exc:  # e.g. the timeout: the session to ask again in
            raise _with_session(exc, session_id) from None
        finally:
            turn.close()
        return JSONResponse(done.model_dump(mode="json"), headers=headers)
    include_usage = body.stream_options is not None and body.stream_options.include_usage

    async def release() -> None:  # also when the client left before the stream started
        turn.close()

    return StreamingResponse(
        _sse(turn, include_usage),
        media_type="text/event-stream",
        headers={**headers, "Cache-Control": "no-cache"},
        background=BackgroundTask(release),
    )


def _parse(raw: bytes) -> ChatCompletionRequest:
    try:
        data = json.loads(raw)
    except ValueError as exc:
        raise OpenAIError(400, "The body is not valid JSON.", code="invalid_json") from exc
    if isinstance(data, dict):
        for name in CLIENT_TOOL_FIELDS:
            if data.get(name) not in (None, [], "none"):
                raise OpenAIError(
                    400,
                    f"'{name}' is not supported: Nexflow runs its own tools on the server "
                    "and answers with the final reply. Leave out tools, functions and "
                    "tool_choice.",
                    param=name,
                    code="client_tools_unsupported",
                )
    try:
        return ChatCompletionRequest.model_validate(data)
    except ValidationError as exc:
        err = exc.errors()[0]
        where = ".".join(str(p) for p in err.get("loc", ())) or None
        raise OpenAIError(
            400, f"{where or 'body'}: {err.get('msg')}", param=where, code="invalid_value"
        ) from exc


def _last_user_text(messages: list[ChatMessage]) -> str:
    last = next((m for m in reversed(messages) if m.role == "user"), None)
    text = last.text() if last is not None else ""
    if not text.strip():
        raise OpenAIError(
            400, "The request needs a user message with text.", param="messages", code=None
        )
    return text


async def _session(request: Request, svc: WebServices, header: str | None, user: str | None) -> str:
    """The caller's session for this request: the header's (must be the caller's own:
    another's answers 404 like a missing one), the one for ``user``, or a new one."""
    user_id = await web_user(request)
    if header:
        session = await svc.storage.get_session(header)
        if session is None or session.user_id != user_id:
            raise OpenAIError(
                404,
                f"There is no session {header!r}; leave {SESSION_HEADER} out to start one.",
                type_="not_found_error",
                param=SESSION_HEADER,
                code="unknown_session",
            )
        return session.id
    if user:
        return (await svc.storage.chat_session(user_id, "web", f"openai:{user}")).id
    return (await svc.storage.ensure_session(None, user_id, "web", OPENAI_CHAT)).id


@dataclass(frozen=True, slots=True)
class _Card:
    """The turn parked on a confirmation: its text answers the request."""

    text: str


class _Turn:
    """One request's turn: its session stream (subscribed before publishing), the reply
    waiter, and what they produce (tokens, then the summary or a confirmation card)."""

    def __init__(
        self, svc: WebServices, session_id: str, model: str, queue: asyncio.Queue[StreamEvent]
    ) -> None:
        self.svc = svc
        self.session_id = session_id
        self.model = model
        self.id = f"chatcmpl-{uuid.uuid4().hex}"
        self.created = int(time.time())
        self._queue = queue
        self._started = time.time()
        self._event_id = ""
        self._immediate: str | None = None
        self._waiter: asyncio.Task[TurnSummary | None] | None = None

    async def publish(self, request: Request, message: str) -> None:
        event = InboundEvent(
            channel="web",
            chat_id=self.session_id,
            sender_id=caller_of(request).sender_id,
            message=message,
            session_id=self.session_id,
        )
        try:
            accepted = await self.svc.gateway.publish(event)
        except Rejected as exc:
            raise _translate(exc) from exc
        self._event_id = accepted.event.id
        if accepted.immediate is not None:  # answered in the publish chain (e.g. /confirm)
            self._immediate = accepted.immediate
            return
        # Registered on the loop's next step, long before a turn (storage, model) can end.
        self._waiter = asyncio.create_task(
            self.svc.gateway.wait_reply(
                accepted.inbox_id, self.svc.config.reply_timeout_s, duplicate=accepted.duplicate
            )
        )

    async def events(self) -> AsyncIterator[str | TurnSummary | _Card]:
        """Streamed tokens (str), then the summary or a card; raises a timeout error."""
        if self._immediate is not None:
            yield _Card(self._immediate)
            return
        waiter = self._waiter
        assert waiter is not None
        getter: asyncio.Future[StreamEvent] | None = None
        try:
            while True:
                getter = getter or asyncio.ensure_future(self._queue.get())
                watched: list[asyncio.Future[Any]] = [getter, waiter]
                await asyncio.wait(watched, return_when=asyncio.FIRST_COMPLETED)
                if getter.done():
                    found = self._interpret(getter.result())
                    getter = None
                    if found is not None:
                        yield found
                        if not isinstance(found, str):
                            return
                    continue
                while not self._queue.empty():  # tokens published before the reply
                    if isinstance(token := self._interpret(self._queue.get_nowait()), str):
                        yield token
                summary = waiter.result()
                if summary is None:
                    raise OpenAIError(
                        504,
                        f"The turn is still running after {self.svc.config.reply_timeout_s:g}"
                        f" s; ask again with {SESSION_HEADER}: {self.session_id} to read "
                        "its answer in the session.",
                        type_="timeout",
                        code="timeout",
                    )
                yield summary
                return
        finally:
            if getter is not None:
                getter.cancel()

    def _interpret(self, event: StreamEvent) -> str | _Card | None:
        kind = event.get("type")
        if kind == "token":
            return str(event.get("text") or "")
        if kind != "reply":
            return None
        # Delivered through the outbox (the web connector) while we follow the session:
        # a confirmation card of the parked turn, or our reply if the waiter missed it.
        ours = event.get("kind") == "confirmation" or event.get("reply_to") == self._event_id
        if not ours:
            return None
        if isinstance(outbox_id := event.get("outbox_id"), int):  # this response delivers it
            self.svc.streams.publish(ack_topic(self.session_id), ack_event(outbox_id))
        if event.get("kind") == "confirmation":
            fields = {k: v for k, v in event.items() if k not in ("type", "outbox_id")}
            return _Card(as_text(ConfirmationOut.model_validate(fields)))
        return _Card(str(event.get("text") or ""))

    async def completion(self) -> ChatCompletion:
        text = ""
        async for item in self.events():
            if isinstance(item, TurnSummary):
                text = item.reply
            elif isinstance(item, _Card):
                text = item.text
        return ChatCompletion(
            id=self.id,
            created=self.created,
            model=self.model,
            choices=[Choice(message=AssistantMessage(content=text))],
            usage=await self.usage(),
        )

    async def usage(self) -> Usage:
        """The turn's tokens: its ``llm_call`` audit rows (a session's turns run one at a
        time, so its rows since the request started are this turn's)."""
        rows = await self.svc.storage.audit_tail(500, "llm_call")
        prompt = completion = 0
        for row in rows:
            if row["session_id"] != self.session_id or row["ts"] < self._started:
                continue
            if row["outcome"] != "ok":
                continue
            data = row.get("data") or {}
            prompt += int(data.get("tokens_in") or 0)
            completion += int(data.get("tokens_out") or 0)
        return Usage(
            prompt_tokens=prompt, completion_tokens=completion, total_tokens=prompt + completion
        )

    def chunk(self, delta: Delta, finish: bool = False) -> str:
        body = ChatCompletionChunk(
            id=self.id,
            created=self.created,
            model=self.model,
            choices=[ChunkChoice(delta=delta, finish_reason="stop" if finish else None)],
        )
        return _data(body.model_dump(mode="json", exclude_none=True))

    def usage_chunk(self, usage: Usage) -> str:
        body = ChatCompletionChunk(
            id=self.id, created=self.created, model=self.model, choices=[], usage=usage
        )
        return _data(body.model_dump(mode="json"))

    def close(self) -> None:
        self.svc.streams.unsubscribe(self.session_id, self._queue)
        if self._waiter is not None:
            self._waiter.cancel()


async def _sse(turn: _Turn, include_usage: bool) -> AsyncIterator[str]:
    try:
        yield turn.chunk(Delta(role="assistant", content=""))
        streamed = ""
        try:
            async for item in turn.events():
                if isinstance(item, str):
                    if item:
                        streamed += item
                        yield turn.chunk(Delta(content=item))
                    continue
                if isinstance(item, _Card):
                    rest = f"\n\n{item.text}" if streamed else item.text
                elif not streamed:  # the model did not stream: the whole reply at once
                    rest = item.reply
                elif item.reply.startswith(streamed):  # e.g. a budget warning added
                    rest = item.reply[len(streamed) :]
                else:
                    rest = ""
                if rest:
                    yield turn.chunk(Delta(content=rest))
        except OpenAIError as exc:
            yield _data(exc.body)
            return
        yield turn.chunk(Delta(), finish=True)
        if include_usage:
            yield turn.usage_chunk(await turn.usage())
        yield "data: [DONE]\n\n"
    finally:
        turn.close()


def _data(payload: dict[str, Any]) -> str:
    return f"data: {json.dumps(payload, ensure_ascii=False)}\n\n"


def _translate(exc: Rejected) -> OpenAIError:
    headers = None
    if isinstance(exc, RateLimited):
        headers = {"Retry-After": f"{exc.retry_after_s:.0f}"}
    return OpenAIError(
        exc.status,
        exc.user_message,
        type_=ERROR_TYPES.get(exc.status, "invalid_request_error"),
        code=exc.reason,
        headers=headers,
    )
