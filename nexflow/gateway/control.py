"""Answers that must not wait in the session's queue: ``/confirm <id>``, ``/cancel <id>``.

A turn waiting for a confirmation holds its session's lane, so the answer is handled in
the publish chain, before the inbox.
"""

from __future__ import annotations

import re

from nexflow import i18n
from nexflow.bus.events import InboundEvent
from nexflow.bus.middleware import Accepted, Handler, PublishContext
from nexflow.gateway.confirmations import Answer, ConfirmationService

_CONTROL = re.compile(r"^/(confirm|cancel|yes|no)(?:@\S+)?\s+([0-9a-f]{4,32})\s*$", re.I)

REPLIES: dict[Answer, str] = {  # i18n keys
    "approved": "confirm_approved",
    "declined": "confirm_declined",
    "expired": "confirm_expired",
    "unknown": "confirm_unknown",
    "not_yours": "confirm_not_yours",
}


class ControlCommands:
    def __init__(self, confirmations: ConfirmationService) -> None:
        self._confirmations = confirmations

    async def __call__(
        self, handler: Handler, event: InboundEvent, ctx: PublishContext
    ) -> Accepted:
        match = _CONTROL.match(event.message.strip())
        if match is None:
            return await handler(event, ctx)
        approve = match.group(1).lower() in ("confirm", "yes")
        answer = await self._confirmations.answer(match.group(2), event.user_id or "", approve)
        return Accepted(
            0, event.session_id or "", event, immediate=i18n.t(ctx.lang, REPLIES[answer])
        )
