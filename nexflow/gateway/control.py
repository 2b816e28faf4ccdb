"""Answers that must not wait in the session's queue: ``/confirm <id>``, ``/cancel <id>``.

The answer is handled in the publish chain, before the inbox: it is not a message to
the model, and it resumes the parked turn it answers (see :mod:`nexflow.gateway.approvals`).
It must come from the user the request was made for, in the chat (or web session) where
it was asked.
"""

from __future__ import annotations

import re

from nexflow import i18n
from nexflow.bus.events import InboundEvent
from nexflow.bus.middleware import Accepted, Handler, PublishContext
from nexflow.gateway.approvals import Answer, ApprovalService

_CONTROL = re.compile(r"^/(confirm|cancel|yes|no)(?:@\S+)?\s+([0-9a-f]{4,32})\s*$", re.I)

REPLIES: dict[Answer, str] = {  # i18n keys
    "approved": "confirm_approved",
    "declined": "confirm_declined",
    "expired": "confirm_expired",
    "unknown": "confirm_unknown",
    "not_yours": "confirm_not_yours",
}


class ControlCommands:
    def __init__(self, confirmations: ApprovalService) -> None:
        self._confirmations = confirmations

    async def __call__(
        self, handler: Handler, event: InboundEvent, ctx: PublishContext
    ) -> Accepted:
        match = _CONTROL.match(event.message.strip())
        if match is None:
            return await handler(event, ctx)
        approve = match.group(1).lower() in ("confirm", "yes")
        # A chat answers for itself only; on the web the caller is authenticated (their
        # token or the loopback owner), so any of their tabs may answer, as the API does.
        where = (
            {}
            if event.channel == "web"
            else {
                "channel": event.channel,
                "chat_id": event.chat_id,
                "session_id": event.session_id,
            }
        )
        answer = await self._confirmations.answer(
            match.group(2).lower(), event.user_id or "", approve, **where
        )
        return Accepted(
            0, event.session_id or "", event, immediate=i18n.t(ctx.lang, REPLIES[answer])
        )
