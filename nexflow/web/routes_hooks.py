"""Inbound signed webhooks: ``POST /api/v1/hooks/{name}`` (docs/connectors.md#webhooks).

The sender authenticates with the hook's signature, not the gateway token (GitHub cannot
send it): the path is under :data:`nexflow.web.hooks.SELF_AUTHENTICATED`, so the guard
applies only its Host check, the no-token-in-URL rule and its body cap. In order: unknown
hook 404, body over ``max_bytes`` 413, bad signature 401, event not in ``events`` 202
"ignored", body not JSON 422, delivery seen before 200 "duplicate"; otherwise the
template is rendered into a ``TextOut`` for the hook's chat, queued in the durable outbox
and audited (``kind = 'webhook'``), 202 "accepted".

With ``turn: true`` the rendered message is instead published as a message from the
hook's ``to.sender`` in that chat (the middleware checks the sender as for any message:
allowlist, rate limit; the budget gate and the sender's toolset apply to the turn), marked
untrusted with source ``webhook:<name>``: the turn is tainted from its start, so a write or
egress it attempts waits for the person's confirmation. A sender the channel refuses gives
202 "refused" (the sender is told nothing; the audit says why).

With ``flow: <name>`` the delivery instead queues a run of that flow (the workspace of
``to.sender``'s user; a configured owner is created like a first message would), with
``flow_args`` rendered from the payload as its inputs; the run id is derived from the
delivery, so a delivery runs the flow once; its cards and notices go to ``to``. An unknown
sender or flow, or bad inputs, give 202 "refused" (logged; nothing runs).

The payload is untrusted content: it is only rendered (dict and list lookups,
nexflow.hooks.render), and a turn that sees it is tainted.
"""

from __future__ import annotations

import hashlib
import json
import logging
import time
from typing import Literal

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel

from nexflow.bus.errors import Rejected
from nexflow.bus.events import InboundEvent, TextOut
from nexflow.config.web import InboundHook
from nexflow.flows.errors import FlowError
from nexflow.flows.host import Origin
from nexflow.hooks import SignatureError
from nexflow.hooks.render import render
from nexflow.hooks.replay import first_time
from nexflow.hooks.signatures import verify
from nexflow.storage.base import AuditRecord
from nexflow.web.app import WebServices, error_body
from nexflow.web.models_common import error

log = logging.getLogger(__name__)
router = APIRouter()


class HookResult(BaseModel):
    """What happened to a delivery."""

    status: Literal["accepted", "ignored", "duplicate", "refused"]


class _TooLarge(Exception):
    pass


async def _read_capped(request: Request, limit: int) -> bytes:
    length = request.headers.get("content-length", "")
    if length.isdigit() and int(length) > limit:
        raise _TooLarge
    body = bytearray()
    async for chunk in request.stream():
        body += chunk
        if len(body) > limit:
            raise _TooLarge
    return bytes(body)


def _message(name: str, hook: InboundHook, event: str | None, payload: object) -> str:
    if hook.template is None:
        return f"Webhook {name}: {event or 'event'} received."
    return render(hook.template, payload)


@router.post(
    "/api/v1/hooks/{name}",
    response_model=HookResult,
    status_code=202,
    responses={
        200: {"model": HookResult, "description": "duplicate: a delivery seen before"},
        401: error("bad_signature: not signed with the hook's secret"),
        404: error("unknown_hook"),
        413: error("too_large: a body over the hook's max_bytes"),
        422: error("not_json: the body is not JSON"),
    },
)
async def receive_hook(name: str, request: Request) -> JSONResponse:
    svc: WebServices = request.app.state.services
    hooks = svc.webhooks.inbound if svc.webhooks is not None else {}
    hook = hooks.get(name)
    if hook is None:
        return JSONResponse(error_body("unknown_hook", f"There is no webhook {name!r}."), 404)
    try:
        body = await _read_capped(request, hook.max_bytes)
    except _TooLarge:
        return JSONResponse(
            error_body("too_large", f"The body is larger than {hook.max_bytes} bytes."), 413
        )
    now = time.time()
    try:
        verified = verify(
            hook.scheme,
            hook.secret.get_secret_value(),
            request.headers,
            body,
            now=now,
            window_s=hook.replay_window_s,
        )
    except SignatureError as exc:
        # Logged, not audited: anyone can send these, the audit table is for real actions.
        log.warning("webhook %s refused: %s", name, exc)
        return JSONResponse(
            error_body("bad_signature", "The request is not signed with this hook's secret."),
            401,
        )
    if hook.events is not None and verified.event not in hook.events:
        return JSONResponse(HookResult(status="ignored").model_dump(), 202)
    try:
        payload: object = json.loads(body)
    except ValueError:  # JSONDecodeError and UnicodeDecodeError
        return JSONResponse(
            error_body(
                "not_json",
                "The body is not JSON. Send the payload as JSON (GitHub: Content type "
                "application/json in the webhook's settings).",
            ),
            422,
        )
    if not await first_time(
        svc.storage, name, verified.delivery_keys, now=now, window_s=hook.replay_window_s
    ):
        return JSONResponse(HookResult(status="duplicate").model_dump(), 200)
    text = _message(name, hook, verified.event, payload)
    outcome: Literal["accepted", "refused"] = "accepted"
    if hook.flow is not None:
        outcome = await _start_flow(svc, name, hook, payload, verified.delivery_keys)
    elif hook.turn:
        outcome = await _start_turn(svc, name, hook, text, verified.delivery_keys)
    else:
        await svc.storage.enqueue(
            TextOut(
                channel=hook.to.channel,
                chat_id=hook.to.chat_id,
                session_id=hook.to.session,
                text=text,
            )
        )
        if svc.notify is not None:
            svc.notify()
    await svc.storage.audit(
        [
            AuditRecord(
                "webhook",
                name,
                outcome,
                None,
                None,
                {
                    "event": verified.event,
                    "bytes": len(body),
                    "channel": hook.to.channel,
                    "chat_id": hook.to.chat_id,
                    "turn": hook.turn,
                    "flow": hook.flow,
                },
            )
        ]
    )
    return JSONResponse(HookResult(status=outcome).model_dump(), 202)


async def _start_turn(
    svc: WebServices, name: str, hook: InboundHook, text: str, keys: tuple[str, ...]
) -> Literal["accepted", "refused"]:
    """Publish the event as the sender's message; accepted once per delivery."""
    event = InboundEvent(
        channel=hook.to.channel,
        chat_id=hook.to.chat_id,
        sender_id=hook.to.sender or hook.to.chat_id,
        message=f"[webhook {name}: an event from outside, not the user's words]\n{text}",
        external_id=f"hook:{name}:{keys[0]}" if keys else None,
        session_id=hook.to.session,
        metadata={"untrusted": True, "source": f"webhook:{name}"},
    )
    try:
        await svc.gateway.publish(event)
    except Rejected as exc:
        log.warning("webhook %s turn refused: %s", name, exc)
        return "refused"
    return "accepted"


async def _start_flow(
    svc: WebServices, name: str, hook: InboundHook, payload: object, keys: tuple[str, ...]
) -> Literal["accepted", "refused"]:
    """Run the hook's flow as the user of ``to.sender`` (a known user of that channel, or
    its configured owner); one run per delivery (the run id comes from its key)."""
    assert hook.flow is not None
    if svc.flows is None:
        log.warning("webhook %s: flows are disabled; nothing was run", name)
        return "refused"
    sender = hook.to.sender or hook.to.chat_id
    user = await _user_of(svc, hook.to.channel, sender)
    if user is None:
        log.warning(
            "webhook %s: %s:%s is not a user here; no flow was run", name, hook.to.channel, sender
        )
        return "refused"
    args = {key: render(template, payload) for key, template in hook.flow_args.items()}
    digest = hashlib.sha256(f"{name}:{keys[0] if keys else ''}".encode()).hexdigest()[:24]
    origin = Origin(hook.to.channel, hook.to.chat_id, hook.to.session or "")
    try:
        await svc.flows.start(
            user,
            hook.flow,
            args,
            origin,
            priority=hook.flow_priority,
            run_id=f"hook-{digest}",
            tainted_by=f"webhook:{name}",  # its inputs are someone else's text
        )
    except FlowError as exc:
        log.warning("webhook %s: flow %s not started: %s", name, hook.flow, exc.message)
        return "refused"
    return "accepted"


async def _user_of(svc: WebServices, channel: str, sender: str) -> str | None:
    found = await svc.storage.find_user(channel, sender)
    if found is not None:
        return found[0]
    config = svc.nexflow_config
    if config is not None and sender in config.security.owner.get(channel, ()):
        return await svc.storage.create_user("owner", "owner", channel, sender)
    return None
