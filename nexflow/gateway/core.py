"""The gateway: the one publish step every connector uses, and the turn worker."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any

import structlog

from nexflow import i18n
from nexflow.bus.bus import Bus
from nexflow.bus.errors import InvalidMessage, NotAllowed, UnknownSession
from nexflow.bus.events import InboundEvent, Outbound, TextOut
from nexflow.bus.middleware import Accepted, Middleware, PublishContext, build_chain
from nexflow.bus.streams import StreamEvent, StreamHub
from nexflow.config.model import BusConfig, PermissionsConfig
from nexflow.gateway.commands import CommandRouter
from nexflow.gateway.confirmations import ConfirmationService
from nexflow.gateway.outbox import OutboxDispatcher
from nexflow.llm.budget import Budgets
from nexflow.memory.paging import PAGE_TOOLS, ContextPager, PagedHistory
from nexflow.observability.metrics import Metrics
from nexflow.orchestrator.agent import Orchestrator, StreamSink, TurnResult
from nexflow.storage.base import (
    AuditRecord,
    MessageRecord,
    NewMessage,
    SessionRecord,
    Storage,
)
from nexflow.tools.base import ToolContext

log = structlog.get_logger("nexflow.gateway")
DraftFn = Callable[[str, str], Awaitable[None]]


@dataclass(frozen=True, slots=True)
class TurnSummary:
    """What a synchronous caller (``POST /api/v1/chat``) gets back."""

    inbox_id: int
    session_id: str
    reply: str
    tool_calls: list[dict[str, Any]]
    error: str | None = None
    llm_seconds: float = 0.0


class Gateway:
    def __init__(
        self,
        storage: Storage,
        orchestrator: Orchestrator,
        outbox: OutboxDispatcher,
        streams: StreamHub,
        metrics: Metrics,
        bus_config: BusConfig,
        middlewares: Sequence[Middleware],
        history_limit: int,
        max_message_chars: int,
        permissions: PermissionsConfig,
        confirmations: ConfirmationService,
        commands: CommandRouter | None = None,
        drafts: Mapping[str, DraftFn] | None = None,
        budgets: Budgets | None = None,
        pager: ContextPager | None = None,
    ) -> None:
        self._storage = storage
        self._orchestrator = orchestrator
        self._outbox = outbox
        self._streams = streams
        self._metrics = metrics
        self._history_limit = history_limit
        self._max_chars = max_message_chars
        self._permissions = permissions
        self._confirmations = confirmations
        self._commands = commands
        self._drafts = dict(drafts or {})
        self._budgets = budgets
        self._pager = pager  # None: the last ``history_limit`` messages, no paging
        self._bus: Bus[int] = Bus(
            self._process,
            concurrency=bus_config.concurrency,
            max_pending=bus_config.max_pending,
            on_depth=metrics.queue_depth.set,
        )
        self._publish = build_chain(middlewares, self._accept)
        self._waiters: dict[int, list[asyncio.Future[TurnSummary]]] = {}

    # -- lifecycle ----------------------------------------------------------------

    async def start(self) -> int:
        """Start the workers and re-queue everything accepted but not answered."""
        self._bus.start()
        pending = await self._storage.pending_inbox()
        for item in pending:
            if item.event.session_id:
                self._bus.submit(item.event.session_id, item.id)
        if pending:
            log.info("inbox_recovered", count=len(pending))
        return len(pending)

    async def stop(self) -> None:
        await self._bus.stop()
        for futures in self._waiters.values():
            for fut in futures:
                fut.cancel()
        self._waiters.clear()

    @property
    def queue_depth(self) -> int:
        return self._bus.pending

    # -- publish ------------------------------------------------------------------

    async def publish(self, event: InboundEvent) -> Accepted:
        """Run the middleware chain and commit the event to the inbox.

        Raises :class:`~nexflow.bus.errors.Rejected` if it is not accepted.
        """
        return await self._publish(event, PublishContext())

    async def _accept(self, event: InboundEvent, ctx: PublishContext) -> Accepted:
        if not event.message.strip() and not event.attachments:
            raise InvalidMessage("The message is empty.")
        if len(event.message) > self._max_chars:
            raise InvalidMessage(
                f"The message is {len(event.message)} characters long; the limit is "
                f"{self._max_chars} (web.max_message_chars)."
            )
        session = await self._session_for(event)
        event = replace(event, session_id=session.id)
        inbox_id, duplicate = await self._storage.accept(event)
        if not duplicate:
            self._bus.submit(session.id, inbox_id)
        return Accepted(inbox_id, session.id, event, duplicate)

    async def _session_for(self, event: InboundEvent) -> SessionRecord:
        user_id = event.user_id or ""
        if event.session_id is None:
            if event.channel == "web":
                return await self._storage.ensure_session(
                    None, user_id, event.channel, event.chat_id
                )
            return await self._storage.chat_session(user_id, event.channel, event.chat_id)
        session = await self._storage.get_session(event.session_id)
        if session is None:
            raise UnknownSession(
                f"There is no session {event.session_id!r}; leave 'session' out to start a new one."
            )
        if session.user_id != user_id:
            raise NotAllowed("That session belongs to someone else.")
        return session

    # -- waiting for a reply ------------------------------------------------------

    async def wait_reply(
        self, inbox_id: int, timeout_s: float, *, duplicate: bool = False
    ) -> TurnSummary | None:
        """The turn's result, or None if it is not done within ``timeout_s``.

        Call it right after :meth:`publish` (before awaiting anything else), so the
        waiter is registered before the turn can finish. For a ``duplicate`` the stored
        reply of the first delivery is returned if there is one.
        """
        fut: asyncio.Future[TurnSummary] = asyncio.get_running_loop().create_future()
        self._waiters.setdefault(inbox_id, []).append(fut)
        try:
            if duplicate and (done := await self._storage.outbox_for_inbox(inbox_id)) is not None:
                item = await self._storage.get_inbox(inbox_id)
                text = getattr(done.outbound, "text", "")
                session_id = item.event.session_id if item and item.event.session_id else ""
                return TurnSummary(inbox_id, session_id, text, [])
            return await asyncio.wait_for(fut, timeout_s)
        except TimeoutError:
            return None
        finally:
            futures = self._waiters.get(inbox_id, [])
            if fut in futures:
                futures.remove(fut)
            if not futures:
                self._waiters.pop(inbox_id, None)

    # -- the turn worker ----------------------------------------------------------

    def _sink_for(self, event: InboundEvent, session: SessionRecord) -> StreamSink | None:
        """Where a turn's live events go: WebSocket followers of the session, and a draft
        in the chat when its connector can edit one. None: nobody watches, so the model
        is not asked to stream."""
        streams = self._streams
        watched = streams.has_subscribers(session.id)
        draft = self._drafts.get(event.channel)
        if not watched and draft is None:
            return None
        text: list[str] = []

        async def sink(e: StreamEvent) -> None:
            if watched:
                streams.publish(session.id, e)
            if draft is not None and e.get("type") == "token":
                text.append(str(e.get("text", "")))
                await draft(event.chat_id, "".join(text))

        return sink

    def _tool_context(self, event: InboundEvent, session: SessionRecord) -> ToolContext:
        user_id = event.user_id or ""
        confirmations = self._confirmations

        async def confirm(title: str, detail: str) -> bool:
            return await confirmations.ask(
                user_id, event.channel, event.chat_id, session.id, title, detail
            )

        return ToolContext(
            user_id=user_id,
            session_id=session.id,
            channel=event.channel,
            chat_id=event.chat_id,
            permissions=self._permissions.granted(event.role, user_id),
            confirm=confirm,
        )

    async def _run_command(
        self, event: InboundEvent, session: SessionRecord, ctx: ToolContext
    ) -> TurnResult:
        assert self._commands is not None
        outcome = await self._commands.handle(event, session, ctx)
        if outcome.new_session:
            await self._storage.ensure_session(None, session.user_id, event.channel, event.chat_id)
        return TurnResult(
            outcome.reply,
            [NewMessage("user", event.message), NewMessage("assistant", outcome.reply)],
            [
                AuditRecord(
                    "command", event.message.split()[0][:40], "ok", event.user_id, session.id
                )
            ],
            outbound=outcome.outbound,
        )

    async def _history(
        self, event: InboundEvent, session: SessionRecord, loaded: Sequence[MessageRecord]
    ) -> PagedHistory:
        """The turn's history: paged (recent turns + paged-out pages) or the last N."""
        if self._pager is None:
            return PagedHistory(list(loaded))
        try:
            return await self._pager.prepare(session, event.message)
        except Exception:  # memory.db unusable: answer with the plain window instead
            log.exception("context_paging_unavailable")
            return PagedHistory(await self._storage.history(session.id, self._history_limit))

    @property
    def _usage_after_reply(self) -> bool:
        """Without a per-user limit no reply carries a budget warning, so a turn's usage
        is recorded once the reply is out: one database write less before it."""
        return self._budgets is not None and self._budgets.limits() == (None, None)

    async def _budgeted_turn(
        self,
        event: InboundEvent,
        session: SessionRecord,
        paged: PagedHistory,
        sink: StreamSink | None,
        ctx: ToolContext,
    ) -> TurnResult:
        """The turn, unless the user is at a hard budget limit (then no model is called)."""
        budgets = self._budgets

        async def run() -> TurnResult:
            return await self._orchestrator.run_turn(
                event,
                session,
                paged.recent,
                sink,
                ctx,
                paged=paged.block,
                hidden_tools=() if paged.pages else PAGE_TOOLS,
            )

        if budgets is None:
            return await run()
        user_id, lang = event.user_id or "", event.metadata.get("lang")
        before = await budgets.check(user_id)
        if before.exhausted:
            text = i18n.t(lang, f"budget_{before.period}_exhausted", limit=before.limit)
            return TurnResult(
                text,
                [NewMessage("user", event.message), NewMessage("assistant", text)],
                [AuditRecord("budget", before.period, "refused", event.user_id, session.id)],
                error="budget_exhausted",
            )
        result = await run()
        if self._usage_after_reply:
            return result
        if await budgets.record_turn(user_id, result.audit):
            after = await budgets.check(user_id)
            if after.warn and result.outbound is None:
                warning = i18n.t(
                    lang, f"budget_{after.period}_warning", percent=after.percent, limit=after.limit
                )
                result.reply = f"{result.reply}\n\n{warning}"
        return result

    async def _process(self, inbox_id: int) -> None:
        # With paging the pager reads the history itself (everything not paged out).
        limit = 0 if self._pager is not None else self._history_limit
        loaded = await self._storage.load_turn(inbox_id, limit)
        if loaded is None:  # already answered, or its session is gone
            return
        item, session, history = loaded
        event = item.event
        with structlog.contextvars.bound_contextvars(
            channel=event.channel, user_id=event.user_id, session_id=session.id, inbox_id=inbox_id
        ):
            started = time.perf_counter()
            sink = self._sink_for(event, session)
            ctx = self._tool_context(event, session)
            command = self._commands is not None and self._commands.is_command(event.message)
            if command:
                result = await self._run_command(event, session, ctx)
            else:
                paged = await self._history(event, session, history)
                result = await self._budgeted_turn(event, session, paged, sink, ctx)
                if result.error == "no_model":
                    result.reply = i18n.t(
                        event.metadata.get("lang"), "no_model", detail=result.reply
                    )
            where = {
                "channel": event.channel,
                "chat_id": event.chat_id,
                "session_id": session.id,
                "reply_to": event.id,
            }
            reply: Outbound = (
                result.outbound.model_copy(update=where)
                if result.outbound is not None
                else TextOut(**where, text=result.reply)
            )
            audit = [
                AuditRecord(
                    "message_in",
                    event.channel,
                    "ok",
                    event.user_id,
                    session.id,
                    {"inbox_id": inbox_id, "chars": len(event.message)},
                ),
                *result.audit,
            ]
            await self._storage.complete(inbox_id, result.messages, reply, audit)
            self._metrics.turn_latency.observe(time.perf_counter() - started)
            self._outbox.notify()
            log.info(
                "turn_done",
                steps=len(result.tool_calls),
                error=result.error,
                ms=round((time.perf_counter() - started) * 1000, 2),
            )
            summary = TurnSummary(
                inbox_id,
                session.id,
                result.reply,
                result.tool_calls,
                result.error,
                result.llm_seconds,
            )
            for fut in self._waiters.get(inbox_id, ()):
                if not fut.done():
                    fut.set_result(summary)
            if self._budgets is not None and self._usage_after_reply and not command:
                # Queued on the database thread before anyone can read usage after the
                # reply. A crash right here loses this turn's usage (statistics only: no
                # limit is set); recorded before the reply, a crash could count it twice.
                await self._budgets.record_turn(event.user_id or "", result.audit)
            if self._pager is not None and not command:
                # Paging upkeep after the reply: it delays this session's next turn, not this one.
                await self._pager.after_turn(session)
