"""Asking the user — never the model — to approve a dangerous action.

A request is delivered through the durable outbox as a
:class:`~nexflow.bus.events.ConfirmationOut` (Confirm / Cancel) and answered through a
path the model cannot reach: ``POST /api/v1/confirmations/{id}``, a WebSocket frame, or
the ``/confirm``/``/cancel`` chat commands, which are handled before the inbox so a turn
waiting for an answer never blocks its own answer. Only the user the request was made
for can answer it. Unanswered requests expire (``skills.confirm_timeout_s``) and count
as "no". Pending requests live in memory: after a crash the interrupted turn runs again
and asks again.
"""

from __future__ import annotations

import asyncio
import secrets
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Literal

from nexflow.bus.events import ConfirmationOut, Outbound, TextOut
from nexflow.storage.base import AuditRecord, Storage

Answer = Literal["approved", "declined", "expired", "unknown", "not_yours"]


@dataclass(slots=True)
class Confirmation:
    id: str
    user_id: str
    channel: str
    chat_id: str
    session_id: str | None
    title: str
    detail: str
    expires_at: float
    key: str = ""
    future: asyncio.Future[bool] = field(
        default_factory=lambda: asyncio.get_running_loop().create_future()
    )

    def to_json(self) -> dict[str, object]:
        return {
            "id": self.id,
            "title": self.title,
            "detail": self.detail,
            "expires_at": self.expires_at,
        }


class ConfirmationService:
    def __init__(
        self, storage: Storage, post: Callable[[Outbound], Awaitable[int]], timeout_s: float
    ) -> None:
        self._storage = storage
        self._post = post
        self._timeout_s = timeout_s
        self._pending: dict[str, Confirmation] = {}

    def _new(
        self,
        user_id: str,
        channel: str,
        chat_id: str,
        session_id: str | None,
        title: str,
        detail: str,
        key: str = "",
    ) -> Confirmation:
        self._expire()
        confirmation = Confirmation(
            id=secrets.token_hex(4),
            user_id=user_id,
            channel=channel,
            chat_id=chat_id,
            session_id=session_id,
            title=title,
            detail=detail,
            expires_at=time.time() + self._timeout_s,
            key=key,
        )
        self._pending[confirmation.id] = confirmation
        return confirmation

    async def ask(
        self,
        user_id: str,
        channel: str,
        chat_id: str,
        session_id: str | None,
        title: str,
        detail: str,
    ) -> bool:
        """Send the request to the chat and wait for the user's answer (False on expiry)."""
        c = self._new(user_id, channel, chat_id, session_id, title, detail)
        await self._post(
            ConfirmationOut(
                channel=channel,
                chat_id=chat_id,
                session_id=session_id,
                confirmation_id=c.id,
                title=title,
                detail=detail,
                expires_at=c.expires_at,
            )
        )
        await self._audit(c, "requested")
        try:
            return await asyncio.wait_for(asyncio.shield(c.future), self._timeout_s)
        except TimeoutError:
            await self._audit(c, "expired")
            await self._post(
                TextOut(
                    channel=channel,
                    chat_id=chat_id,
                    session_id=session_id,
                    text=f"Confirmation {c.id} expired; nothing was run.",
                )
            )
            return False
        finally:
            self._pending.pop(c.id, None)

    def issue(self, user_id: str, channel: str, title: str, detail: str, key: str) -> Confirmation:
        """A request to be answered by repeating the call with its id (HTTP 409 flow)."""
        return self._new(user_id, channel, "", None, title, detail, key)

    def consume(self, confirmation_id: str, user_id: str, key: str) -> bool:
        """True once for an unexpired :meth:`issue` request made for this user and ``key``."""
        self._expire()
        c = self._pending.get(confirmation_id)
        if c is None or c.user_id != user_id or c.key != key:
            return False
        del self._pending[confirmation_id]
        return True

    async def answer(self, confirmation_id: str, user_id: str, approve: bool) -> Answer:
        self._expire()
        c = self._pending.get(confirmation_id)
        if c is None:
            return "unknown"
        if c.user_id != user_id:
            return "not_yours"
        if not c.future.done():
            c.future.set_result(approve)
        await self._audit(c, "approved" if approve else "declined")
        return "approved" if approve else "declined"

    def pending_for(self, user_id: str) -> list[Confirmation]:
        self._expire()
        return [c for c in self._pending.values() if c.user_id == user_id]

    def _expire(self) -> None:
        now = time.time()
        for cid in [cid for cid, c in self._pending.items() if c.expires_at <= now and c.key]:
            del self._pending[cid]

    async def _audit(self, c: Confirmation, outcome: str) -> None:
        await self._storage.audit(
            [
                AuditRecord(
                    "confirmation",
                    c.title,
                    outcome,
                    c.user_id,
                    c.session_id,
                    {"id": c.id, "detail": c.detail[:2000], "channel": c.channel},
                )
            ]
        )
