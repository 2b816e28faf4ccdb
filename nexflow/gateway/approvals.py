"""Asking the user — never the model — to approve an action, without holding anything.

A chat turn that needs an approval is parked by the turn runner
(:mod:`nexflow.gateway.turns`): the request is stored (table ``approvals``, bound to the
exact call, the user and the chat), its :class:`~nexflow.bus.events.ConfirmationOut`
goes out through the durable outbox, and the worker is free. The answer comes through a
path the model cannot reach: ``POST /api/v1/confirmations/{id}``, a button, or
``/confirm <id>`` / ``/cancel <id>`` (handled before the inbox). :meth:`ApprovalService.answer`
records it once and hands the turn back to its session's lane (``resume``), where it
continues from its checkpoint — after a restart too; nothing is asked twice. Unanswered
requests expire after ``skills.confirm_timeout_s``; the runner then closes the turn with
a clear message.

The HTTP skill API's 409 flow uses the same table: :meth:`issue` makes a request that is
answered by repeating the exact call with its id, and :meth:`consume` accepts it once.

Flow approvals (an ``approval`` node, ``docs/flows.md``) are stored here too, without an
inbox id and with the key ``flow:<run id>:<node>`` (:meth:`ask_flow`, asked once per
node). The same three answer paths reach them; :meth:`answer` records the owner's answer
once and hands it to ``on_flow_answer`` (the flow service, which delivers it to the
engine). An answer to a node that was answered already, expired or whose run ended is
``expired``.
"""

from __future__ import annotations

import secrets
import time
from collections.abc import Awaitable, Callable
from dataclasses import replace
from typing import Protocol

import structlog

from nexflow.bus.events import ConfirmationOut
from nexflow.storage.base import ApprovalAnswer, ApprovalRecord, Audit, AuditRecord, Turns
from nexflow.storage.repo_flows import FlowStorage, flow_call_key, parse_flow_key

log = structlog.get_logger("nexflow.approvals")
Answer = ApprovalAnswer
Resume = Callable[[str, int], None]  # (session id, inbox id): back onto the session's lane
# (run id, node, approved, user id) -> False when the node no longer waits (run ended)
FlowAnswer = Callable[[str, str, bool, str], Awaitable[bool]]


class ApprovalStorage(Turns, Audit, FlowStorage, Protocol):
    """Turn and flow approvals (``nexflow.storage.repo_turns``, ``repo_flows``) and the
    audit log."""


class ApprovalService:
    def __init__(self, store: ApprovalStorage, timeout_s: float) -> None:
        self._store = store
        self.timeout_s = timeout_s
        self.resume: Resume | None = None  # set by the gateway
        self.on_new: Callable[[], None] | None = None  # wakes the expiry timer
        self.on_flow_answer: FlowAnswer | None = None  # set by the flow service
        self.notify: Callable[[], None] | None = None  # wakes the outbox (a flow's card)

    def request(
        self,
        user_id: str,
        channel: str,
        chat_id: str,
        session_id: str | None,
        title: str,
        detail: str,
        call_key: str,
        inbox_id: int | None = None,
    ) -> tuple[ApprovalRecord, ConfirmationOut]:
        """A new request and the message that asks it (stored by the caller, atomically
        with the parked turn)."""
        now = time.time()
        record = ApprovalRecord(
            id=secrets.token_hex(4),
            inbox_id=inbox_id,
            user_id=user_id,
            channel=channel,
            chat_id=chat_id,
            session_id=session_id,
            title=title,
            detail=detail,
            call_key=call_key,
            created_at=now,
            expires_at=now + self.timeout_s,
        )
        ask = ConfirmationOut(
            channel=channel,
            chat_id=chat_id,
            session_id=session_id,
            confirmation_id=record.id,
            title=title,
            detail=detail,
            expires_at=record.expires_at,
        )
        return record, ask

    def parked(self) -> None:
        """A request was stored: the expiry timer may need to wake earlier."""
        if self.on_new is not None:
            self.on_new()

    async def answer(
        self,
        approval_id: str,
        user_id: str,
        approve: bool,
        *,
        channel: str | None = None,
        chat_id: str | None = None,
        session_id: str | None = None,
    ) -> Answer:
        """Record the answer once and resume the parked turn on its session's lane (or
        hand a flow approval's answer to the flow service)."""
        stored = await self._store.get_approval(approval_id)
        if stored is not None and stored.inbox_id is None:
            flow = parse_flow_key(stored.call_key)
            if flow is not None:
                elsewhere = channel is not None and (
                    (stored.channel, stored.chat_id) != (channel, chat_id)
                    and (stored.session_id is None or stored.session_id != session_id)
                )
                if elsewhere:  # a chat answers for itself only (as for turns)
                    return "not_yours"
                return await self._answer_flow(stored, flow, user_id, approve)
        answer, record = await self._store.answer_approval(
            approval_id, user_id, approve, channel=channel, chat_id=chat_id, session_id=session_id
        )
        if answer in ("approved", "declined") and record is not None:
            await self._audit(record, answer)
            if record.inbox_id is not None and record.session_id and self.resume is not None:
                self.resume(record.session_id, record.inbox_id)
        elif answer == "not_yours":
            log.warning("approval_answer_refused", approval=approval_id, user_id=user_id)
        return answer

    async def ask_flow(
        self,
        user_id: str,
        channel: str,
        chat_id: str,
        session_id: str | None,
        run_id: str,
        node: str,
        title: str,
        detail: str,
        expires_s: float,
    ) -> bool:
        """Store a flow node's approval and queue its card, once per (run, node)."""
        record, ask = self.request(
            user_id, channel, chat_id, session_id, title, detail, flow_call_key(run_id, node)
        )
        expires_at = record.created_at + expires_s
        record = replace(record, expires_at=expires_at)
        ask = ask.model_copy(update={"expires_at": expires_at})
        new = await self._store.ask_flow(record, ask, [approval_audit(record, "requested")])
        if new and self.notify is not None:
            self.notify()
        return new

    async def _answer_flow(
        self, record: ApprovalRecord, flow: tuple[str, str], user_id: str, approve: bool
    ) -> Answer:
        outcome = "approved" if approve else "declined"
        answer, stored = await self._store.answer_flow_approval(
            record.id, user_id, approve, [approval_audit(record, outcome)]
        )
        if answer == "not_yours":
            log.warning("approval_answer_refused", approval=record.id, user_id=user_id)
        if answer not in ("approved", "declined") or stored is None:
            return answer
        if self.on_flow_answer is None:
            log.warning("flow_answer_dropped", approval=record.id, reason="flows are off")
        elif await self.on_flow_answer(flow[0], flow[1], approve, user_id):
            return answer
        # The node no longer waits (expired, the run paused or ended) or flows are off: the
        # user hears "expired", and the stored answer is marked so, or a restart would
        # deliver it to the node after all.
        await self._store.expire_flow_approval(record.id)
        return "expired"

    async def issue(
        self, user_id: str, channel: str, title: str, detail: str, key: str
    ) -> ApprovalRecord:
        """A request answered by repeating the call with its id (HTTP 409 flow)."""
        record, _ = self.request(user_id, channel, "", None, title, detail, key)
        await self._store.issue_approval(record)
        await self._audit(record, "requested")
        return record

    async def consume(self, approval_id: str, user_id: str, key: str) -> bool:
        ok = await self._store.consume_approval(approval_id, user_id, key)
        if ok and (record := await self._store.get_approval(approval_id)) is not None:
            await self._audit(record, "approved")
        return ok

    async def pending_for(self, user_id: str) -> list[ApprovalRecord]:
        return await self._store.approvals_for(user_id)

    async def _audit(self, record: ApprovalRecord, outcome: str) -> None:
        await self._store.audit([approval_audit(record, outcome)])


def approval_audit(record: ApprovalRecord, outcome: str) -> AuditRecord:
    return AuditRecord(
        "confirmation",
        record.title,
        outcome,
        record.user_id,
        record.session_id,
        {"id": record.id, "detail": record.detail[:2000], "channel": record.channel},
    )
