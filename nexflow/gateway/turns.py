"""The turn runner: one inbox item through its durable state machine.

``accepted → running → awaiting_approval → running → done | dead`` (stored as the inbox
row's status, see :mod:`nexflow.storage.repo_turns`). A bus worker calls
:meth:`TurnRunner.process`; the run starts by counting the attempt and loading what the
turn needs in one round trip, then either

* runs a slash command, or the agent loop with the session's (paged) history, or
* resumes a parked turn from its checkpoint with the user's answers,

and ends in one of four ways: **done** (reply, history, audit and outbox row committed
together), **parked** (a call needs the user's approval: checkpoint, request and its card
stored together; the worker is free at once), **failed** (an exception: the turn runs
again, and after ``bus.max_attempts`` runs it is a dead letter and its sender is told),
or **stopped** (the user pressed Stop, :meth:`TurnRunner.stop`: the run is cancelled and
the turn is done with what streamed so far, never run again).
Parked turns whose request expires are closed by :meth:`expire_due` with a clear message.

Between replicas a run holds its session's lease (:mod:`nexflow.gateway.replicas`) and
every transaction that ends it carries the lease's ``fence``: a replica that lost the
session meanwhile gets :class:`~nexflow.storage.repo_leases.FenceLost`, which ends the run
here without touching the turn (its new holder runs it).
"""

from __future__ import annotations

import asyncio
import dataclasses
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

import structlog

from nexflow import i18n
from nexflow.bus.events import FileOut, InboundEvent, Outbound, TextOut
from nexflow.bus.streams import StreamHub
from nexflow.config.model import PermissionsConfig
from nexflow.gateway.approvals import ApprovalService, approval_audit
from nexflow.gateway.commands import CommandRouter
from nexflow.gateway.outbox import OutboxDispatcher
from nexflow.gateway.stop import stopped_event, stopped_note
from nexflow.gateway.streaming import LIVE_KEY, DraftFn, turn_sink
from nexflow.llm.budget import Budgets
from nexflow.memory.paging import PAGE_TOOLS, ContextPager, PagedHistory
from nexflow.observability.metrics import Metrics
from nexflow.orchestrator.agent import Orchestrator, decline_rest
from nexflow.orchestrator.checkpoint import Checkpoint
from nexflow.orchestrator.steps import TurnResult
from nexflow.orchestrator.tool_labels import ToolLabeler
from nexflow.storage.base import (
    ApprovalRecord,
    AuditRecord,
    InboxItem,
    MessageRecord,
    NewMessage,
    SessionRecord,
    Storage,
    TurnStart,
)
from nexflow.storage.repo_leases import Fence, FenceLost
from nexflow.tools.approval import TurnApprovals, call_key
from nexflow.tools.base import TURN_STOPPED, ApprovalRequired, ToolContext

log = structlog.get_logger("nexflow.turns")


@dataclass(frozen=True, slots=True)
class TurnSummary:
    """What a synchronous caller (``POST /api/v1/chat``) gets back."""

    inbox_id: int
    session_id: str
    reply: str
    tool_calls: list[dict[str, Any]]
    error: str | None = None
    llm_seconds: float = 0.0


class TurnStorage(Storage, Protocol):
    """The storage a runner needs: a turn's transitions take the run's lease fence."""

    async def begin_turn(
        self, inbox_id: int, history_limit: int, max_attempts: int, *, fence: Fence | None = None
    ) -> TurnStart | None: ...

    async def complete(
        self,
        inbox_id: int,
        messages: Sequence[NewMessage],
        reply: Outbound,
        audit: Sequence[AuditRecord] = (),
        *,
        delivered: bool = False,
        extra: Sequence[Outbound] = (),
        fence: Fence | None = None,
    ) -> int: ...

    async def park_turn(
        self,
        inbox_id: int,
        checkpoint: str,
        approval: ApprovalRecord,
        ask: Outbound,
        audit: Sequence[AuditRecord] = (),
        *,
        fence: Fence | None = None,
    ) -> int: ...

    async def fail_turn(
        self, inbox_id: int, error: str, max_attempts: int, *, fence: Fence | None = None
    ) -> str: ...

    async def bury_turn(
        self,
        inbox_id: int,
        error: str,
        notice: Outbound | None,
        audit: Sequence[AuditRecord],
        *,
        fence: Fence | None = None,
    ) -> None: ...


Done = Callable[[TurnSummary], None]
Requeue = Callable[[str, int], None]


@dataclass(slots=True)
class _Running:
    """The turn a session's lane runs now: its task (what Stop cancels) and the text it
    streamed (what a stopped turn keeps)."""

    inbox_id: int
    fence: Fence | None = None
    task: asyncio.Task[None] | None = None
    text: list[str] = dataclasses.field(default_factory=list)
    stopping: bool = False
    finishing: bool = False  # its outcome is being stored: too late to stop


class TurnRunner:
    def __init__(
        self,
        storage: TurnStorage,
        orchestrator: Orchestrator,
        outbox: OutboxDispatcher,
        streams: StreamHub,
        metrics: Metrics,
        approvals: ApprovalService,
        *,
        history_limit: int,
        max_attempts: int,
        permissions: PermissionsConfig,
        done: Done,
        requeue: Requeue,
        waiting: Callable[[int], bool] = lambda _: False,
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
        self._approvals = approvals
        self._history_limit = history_limit
        self._max_attempts = max_attempts
        self._permissions = permissions
        self._done = done
        self._requeue = requeue
        self._waiting = waiting  # a synchronous caller waits for this inbox id
        self._commands = commands
        self._drafts = dict(drafts or {})
        self._budgets = budgets
        self._pager = pager  # None: the last ``history_limit`` messages, no paging
        self._running: dict[str, _Running] = {}  # session id -> its turn running now

    # -- stop -------------------------------------------------------------------------------

    def stop(self, session_id: str) -> int | None:
        """Cancel the turn ``session_id`` runs now; the inbox id of the turn stopped, or
        None when none runs (or it is already storing its reply)."""
        running = self._running.get(session_id)
        if running is None or running.task is None or running.finishing or running.stopping:
            return None
        running.stopping = True
        running.task.cancel(TURN_STOPPED)
        return running.inbox_id

    # -- one run ------------------------------------------------------------------------

    async def process(self, inbox_id: int, *, fence: Fence | None = None) -> None:
        """Run the turn ``inbox_id``; ``fence``: the session lease it runs under (raises
        :class:`~nexflow.storage.repo_leases.FenceLost` once another replica has it)."""
        # With paging the pager reads the history itself (everything not paged out).
        limit = 0 if self._pager is not None else self._history_limit
        start = await self._storage.begin_turn(inbox_id, limit, self._max_attempts, fence=fence)
        if start is None:  # answered, parked, dead, or its session is gone
            return
        event, session = start.item.event, start.session
        with structlog.contextvars.bound_contextvars(
            channel=event.channel, user_id=event.user_id, session_id=session.id, inbox_id=inbox_id
        ):
            if start.dead:
                why = "the turn was started more times than bus.max_attempts"
                await self._bury(start, why, fence)
                return
            try:
                await self._stoppable(start, fence)
            except FenceLost:
                raise
            except Exception as exc:
                log.exception("turn_failed", attempt=start.item.attempts)
                self._metrics.errors.labels("turn").inc()
                why = f"{type(exc).__name__}: {exc}"
                status = await self._storage.fail_turn(
                    inbox_id, why, self._max_attempts, fence=fence
                )
                if status == "dead":
                    await self._bury(start, why, fence)
                else:
                    self._requeue(session.id, inbox_id)

    async def _stoppable(self, start: TurnStart, fence: Fence | None = None) -> None:
        """Run the turn as its own task, which :meth:`stop` may cancel; a cancelled one
        ends as stopped. A cancellation of the worker itself (shutdown) goes on up."""
        session_id = start.session.id
        running = _Running(start.item.id, fence)
        running.task = asyncio.create_task(self._run(start, running))
        self._running[session_id] = running
        try:
            await running.task
        except asyncio.CancelledError:
            me = asyncio.current_task()
            if not running.stopping or (me is not None and me.cancelling()):
                raise
            await self._stopped(start, running)
        finally:
            if self._running.get(session_id) is running:
                del self._running[session_id]

    async def _stopped(self, start: TurnStart, running: _Running) -> None:
        """A stopped turn is done: the user's message and the text streamed so far are
        kept in the history, nothing else; its tabs get ``{"type": "stopped"}``."""
        item, session = start.item, start.session
        event = item.event
        partial = "".join(running.text).rstrip()
        note = stopped_note(event.metadata.get("lang"))
        text = f"{partial}\n\n{note}" if partial else note
        messages: list[NewMessage] = []
        if start.checkpoint is not None:
            checkpoint = Checkpoint.loads(start.checkpoint)
            messages = decline_rest(checkpoint, "the user stopped the turn")
            if checkpoint.kind == "command" or not messages:
                messages = [NewMessage("user", event.message), *messages]
        else:
            messages = [NewMessage("user", event.message)]
        messages.append(NewMessage("assistant", text))
        audit = [
            AuditRecord(
                "turn_stopped",
                event.channel,
                "stopped",
                event.user_id,
                session.id,
                {"inbox_id": item.id, "chars": len(partial)},
            )
        ]
        # The web tab saw the text stream and gets the stopped frame: nothing to deliver.
        web = event.channel == "web"
        await self._storage.complete(
            item.id, messages, _answer(event, text), audit, delivered=web, fence=running.fence
        )
        if not web:
            self._outbox.notify()
        self._streams.publish(session.id, stopped_event(item.id))
        log.info("turn_stopped", chars=len(partial))
        self._done(TurnSummary(item.id, session.id, text, [], "stopped"))

    async def _run(self, start: TurnStart, running: _Running | None = None) -> None:
        started = time.perf_counter()
        item, session = start.item, start.session
        event = item.event
        ctx = dataclasses.replace(self._tool_context(event, session), turn_id=str(item.id))
        labels = ToolLabeler(
            lambda: self._orchestrator.tools_for(ctx).specs(), event.metadata.get("lang")
        )
        sink = turn_sink(
            self._streams,
            self._drafts.get(event.channel),
            event.chat_id,
            session.id,
            label=labels,
            seen=running.text if running is not None else None,
            live=bool(event.metadata.get(LIVE_KEY)),
        )
        approvals = TurnApprovals(start.decisions)
        command = self._commands is not None and self._commands.is_command(event.message)
        if start.checkpoint is not None:
            checkpoint = Checkpoint.loads(start.checkpoint)
            if checkpoint.kind == "command":
                result = await self._run_command(event, session, ctx, approvals)
            else:
                result = await self._orchestrator.resume_turn(
                    event, session, checkpoint, approvals, sink, ctx
                )
        elif command:
            result = await self._run_command(event, session, ctx, approvals)
        else:
            paged = await self._history(event, session, start.history)
            result = await self._orchestrator.run_turn(
                event,
                session,
                paged.recent,
                sink,
                ctx,
                paged=paged.block,
                hidden_tools=() if paged.pages else PAGE_TOOLS,
                approvals=approvals,
            )
        if running is not None:
            running.finishing = True
        fence = running.fence if running is not None else None
        if result.parked is not None:
            await self._park(item.id, event, session, result.parked, fence)
            return
        await self._explain(event, result)
        await self._finish(item.id, event, session, result, started, fence)
        if self._pager is not None and not command:
            # Paging upkeep after the reply: it delays this session's next turn, not this one.
            await self._pager.after_turn(session)

    async def _explain(self, event: InboundEvent, result: TurnResult) -> None:
        """Refusals in the user's language; the budget warning past the soft limit."""
        lang = event.metadata.get("lang")
        if result.error == "no_model":
            result.reply = i18n.t(lang, "no_model", detail=result.reply)
        elif result.error == "budget_exhausted" and result.error_detail is not None:
            period = result.error_detail.period
            key = f"budget_{period if period in ('daily', 'monthly') else 'daily'}_exhausted"
            result.reply = i18n.t(lang, key, limit=result.error_detail.limit)
            result.audit.append(
                AuditRecord("budget", period, "refused", event.user_id, event.session_id)
            )
        else:
            budgets = self._budgets
            if budgets is None or budgets.limits() == (None, None) or result.outbound is not None:
                return
            after = await budgets.check(event.user_id or "")
            if after.warn:
                warning = i18n.t(
                    lang, f"budget_{after.period}_warning", percent=after.percent, limit=after.limit
                )
                result.reply = f"{result.reply}\n\n{warning}"
                return
        if result.messages and result.messages[-1].role == "assistant":
            result.messages[-1] = NewMessage("assistant", result.reply)

    async def _finish(
        self,
        inbox_id: int,
        event: InboundEvent,
        session: SessionRecord,
        result: TurnResult,
        started: float,
        fence: Fence | None = None,
    ) -> None:
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
        # A web reply whose HTTP caller waits for it goes out in that response.
        answered = event.channel == "web" and self._waiting(inbox_id)
        files = [FileOut(**where, path=f.path, caption=f.caption) for f in result.files]
        await self._storage.complete(
            inbox_id, result.messages, reply, audit, delivered=answered, extra=files, fence=fence
        )
        if answered:
            self._metrics.messages_out.labels(event.channel).inc()
        self._metrics.turn_latency.observe(time.perf_counter() - started)
        if not answered or files:  # else nothing new waits in the outbox: no round to run
            self._outbox.notify()
        log.info(
            "turn_done",
            steps=len(result.tool_calls),
            error=result.error,
            ms=round((time.perf_counter() - started) * 1000, 2),
        )
        self._done(
            TurnSummary(
                inbox_id,
                session.id,
                result.reply,
                result.tool_calls,
                result.error,
                result.llm_seconds,
            )
        )

    # -- parking and expiry -----------------------------------------------------------------

    async def _park(
        self,
        inbox_id: int,
        event: InboundEvent,
        session: SessionRecord,
        checkpoint: Checkpoint,
        fence: Fence | None = None,
    ) -> None:
        record, ask = self._approvals.request(
            event.user_id or session.user_id,
            event.channel,
            event.chat_id,
            session.id,
            checkpoint.title,
            checkpoint.detail,
            checkpoint.call_key,
            inbox_id,
        )
        await self._storage.park_turn(
            inbox_id,
            checkpoint.dumps(),
            record,
            ask,
            [approval_audit(record, "requested")],
            fence=fence,
        )
        self._outbox.notify()
        self._approvals.parked()
        log.info("turn_parked", approval=record.id, title=checkpoint.title)

    async def expire_due(self) -> int:
        """Close every parked turn whose request has expired: each call that was waiting is
        answered "not run", the reply says so, and the turn is done. Returns how many."""
        expired = await self._storage.expired_turns(time.time())
        for approval, item, state in expired:
            event = item.event
            checkpoint = Checkpoint.loads(state)
            text = i18n.t(event.metadata.get("lang"), "confirm_expired_turn", id=approval.id)
            messages = decline_rest(checkpoint, "the confirmation expired")
            if checkpoint.kind == "command" or not messages:
                messages = [NewMessage("user", event.message), *messages]
            messages.append(NewMessage("assistant", text))
            audit = [*checkpoint.audit, approval_audit(approval, "expired")]
            await self._storage.complete(item.id, messages, _answer(event, text), audit)
            log.info("turn_expired", approval=approval.id, inbox_id=item.id)
            self._done(
                TurnSummary(item.id, event.session_id or "", text, checkpoint.tool_calls, "expired")
            )
        if expired:
            self._outbox.notify()
        return len(expired)

    def dead_letter_text(self, item: InboxItem) -> str:
        """What a dead letter's sender is told (also by a replica whose HTTP caller waited
        for a turn another replica buried)."""
        lang = item.event.metadata.get("lang")
        return i18n.t(lang, "dead_letter", attempts=self._max_attempts, id=item.id)

    async def _bury(self, start: TurnStart, why: str, fence: Fence | None = None) -> None:
        """A dead letter: marked, its sender told plainly, nothing replayed."""
        event = start.item.event
        text = self.dead_letter_text(start.item)
        audit = [
            AuditRecord(
                "dead_letter",
                event.channel,
                "dead",
                event.user_id,
                event.session_id,
                {"inbox_id": start.item.id, "error": why[:2000]},
            )
        ]
        await self._storage.bury_turn(start.item.id, why, _answer(event, text), audit, fence=fence)
        self._outbox.notify()
        self._metrics.errors.labels("dead_letter").inc()
        log.warning("turn_dead", inbox_id=start.item.id, error=why)
        self._done(TurnSummary(start.item.id, event.session_id or "", text, [], "dead_letter"))

    # -- pieces ----------------------------------------------------------------------------

    def _tool_context(self, event: InboundEvent, session: SessionRecord) -> ToolContext:
        user_id = event.user_id or session.user_id
        return ToolContext(
            user_id=user_id,
            session_id=session.id,
            channel=event.channel,
            chat_id=event.chat_id,
            permissions=self._permissions.granted(event.role, user_id),
            role=event.role,
        )

    async def _run_command(
        self,
        event: InboundEvent,
        session: SessionRecord,
        ctx: ToolContext,
        approvals: TurnApprovals,
    ) -> TurnResult:
        assert self._commands is not None
        approvals.bind(call_key("command", event.message))
        try:
            outcome = await self._commands.handle(
                event, session, dataclasses.replace(ctx, confirm=approvals.confirm)
            )
        except ApprovalRequired as ask:
            parked = TurnResult("", [], [])
            parked.parked = Checkpoint("command", approvals.current, ask.title, ask.detail)
            return parked
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


def _answer(event: InboundEvent, text: str) -> TextOut:
    """A plain answer to ``event``, in its chat and session."""
    return TextOut(
        channel=event.channel,
        chat_id=event.chat_id,
        session_id=event.session_id,
        reply_to=event.id,
        text=text,
    )
