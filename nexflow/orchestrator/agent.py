"""The agent loop for one turn: model → tools → model …, parked when the user must answer.

The tools of a turn are computed from its caller (``Toolbox.tools_for(ctx)``): the model
is offered, and may call, only the caller's own. Every model call goes through the
budgeted client (:class:`ModelSource` is the one budget gate: it reserves before it
sends). When a call needs the user's approval the loop stops and returns a
:class:`~nexflow.orchestrator.checkpoint.Checkpoint` in ``TurnResult.parked``;
:meth:`Orchestrator.resume_turn` continues from it with the user's decisions.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Collection, Sequence
from typing import Any, Protocol

import structlog

from nexflow.bus.events import InboundEvent
from nexflow.config.model import AgentConfig
from nexflow.llm.client import LLMClient, ToolCall
from nexflow.llm.errors import BudgetExhausted, LLMError, NoModelConfigured, ProviderRejected
from nexflow.observability.metrics import Metrics
from nexflow.orchestrator.checkpoint import Checkpoint
from nexflow.orchestrator.context import history_messages, skills_used, system_prompt
from nexflow.orchestrator.persona import PersonaFiles
from nexflow.orchestrator.steps import Steps, StreamSink, TurnResult, TurnState
from nexflow.storage.base import MessageRecord, NewMessage, SessionRecord
from nexflow.tools.approval import TurnApprovals
from nexflow.tools.base import ApprovalRequired, ToolContext, ToolSpec
from nexflow.tools.disclosure import LOAD_TOOLS, Disclosure
from nexflow.tools.toolset import Toolbox, Toolset
from nexflow.trust import FRAME_INSTRUCTIONS, TrustGate, untrusted_sources

__all__ = ["ModelSource", "Orchestrator", "StreamSink", "TurnResult"]

log = structlog.get_logger("nexflow.orchestrator")
# (user id, skills used in the history) → the user's own prompt section (memory/userfiles.py)
UserContext = Callable[[str, Collection[str]], Any]


class ModelSource(Protocol):
    """The budgeted model clients (``nexflow.llm.gate.BudgetGate``): a client for ``route``
    that reserves the call's worst case against ``user_id``'s budget before it sends and
    raises :class:`~nexflow.llm.errors.BudgetExhausted` (no request made) when it cannot."""

    async def client_for(
        self, route: str, *, user_id: str, scope: str = "user", purpose: str = ""
    ) -> LLMClient: ...


class Orchestrator:
    def __init__(
        self,
        models: ModelSource,
        tools: Toolbox,
        config: AgentConfig,
        persona: PersonaFiles,
        metrics: Metrics,
        tool_timeout_s: float = 600.0,
        context_sections: Callable[[], str] | None = None,
        user_context: UserContext | None = None,
        gate: TrustGate | None = None,
    ) -> None:
        self._models = models
        self._tools = tools
        self._config = config
        self._persona = persona
        self._sections = context_sections
        self._user_context = user_context
        self.steps = Steps(
            metrics,
            tool_timeout_s=tool_timeout_s,
            output_chars=config.tool_output_chars,
            gate=gate,
        )

    def tools_for(self, ctx: ToolContext) -> Toolset:
        return self._tools.tools_for(ctx)

    async def build_messages(
        self,
        history: Sequence[MessageRecord],
        text: str,
        *,
        user_id: str = "",
        paged: str = "",
    ) -> list[dict[str, Any]]:
        """The model's messages; ``paged`` is the section on paged-out history."""
        extra = self._sections() if self._sections is not None else ""
        user = (
            await self._user_context(user_id, skills_used(history))
            if self._user_context is not None and user_id
            else ""
        )
        system = system_prompt(
            self._persona.text(),
            "\n\n".join(p for p in (self._config.system_prompt, FRAME_INSTRUCTIONS) if p),
            extra,
            user=user,
            paged=paged,
        )
        return [
            {"role": "system", "content": system},
            *history_messages(history),
            {"role": "user", "content": text},
        ]

    async def run_turn(
        self,
        event: InboundEvent,
        session: SessionRecord,
        history: Sequence[MessageRecord],
        sink: StreamSink | None = None,
        ctx: ToolContext | None = None,
        *,
        paged: str = "",
        hidden_tools: Collection[str] = (),
        approvals: TurnApprovals | None = None,
    ) -> TurnResult:
        """One turn. ``paged``: the prompt section on paged-out history; ``hidden_tools``:
        tools not offered this turn (the paging tools in a session without pages);
        ``approvals``: set for a turn that may park (a chat turn), None where nobody can
        be asked (then a call that needs approval is refused)."""
        turn = TurnState(
            event, session, sink, TurnResult("", [NewMessage("user", event.message)], [])
        )
        # Untrusted output still in the history the model sees taints this turn too, and so
        # does a message that itself came from outside (an email body).
        turn.tainted = list(untrusted_sources(m.content for m in history if m.role == "tool"))
        if event.metadata.get("untrusted") is True:
            turn.tainted.append(str(event.metadata.get("source") or f"{event.channel}:message"))
        ctx = ctx or _context(event, session)
        messages = await self.build_messages(
            history, event.message, user_id=ctx.user_id, paged=paged
        )
        return await self._loop(
            turn, ctx, messages, 0, [], 0, list(hidden_tools), approvals, Disclosure()
        )

    async def resume_turn(
        self,
        event: InboundEvent,
        session: SessionRecord,
        checkpoint: Checkpoint,
        approvals: TurnApprovals,
        sink: StreamSink | None = None,
        ctx: ToolContext | None = None,
    ) -> TurnResult:
        """Continue a parked turn: the waiting call runs (or is declined) with the user's
        answer, then the loop goes on as if it had never stopped."""
        c = checkpoint
        result = TurnResult(
            "",
            list(c.history),
            list(c.audit),
            list(c.tool_calls),
            llm_seconds=c.llm_seconds,
            files=list(c.files),
        )
        turn = TurnState(event, session, sink, result, list(c.tainted))
        ctx = ctx or _context(event, session)
        return await self._loop(
            turn,
            ctx,
            list(c.messages),
            c.step,
            list(c.calls),
            c.index,
            c.hidden_tools,
            approvals,
            Disclosure(list(c.loaded_tools)),
        )

    async def _loop(
        self,
        turn: TurnState,
        ctx: ToolContext,
        messages: list[dict[str, Any]],
        step: int,
        calls: list[ToolCall],
        index: int,
        hidden: list[str],
        approvals: TurnApprovals | None,
        disclosure: Disclosure,
    ) -> TurnResult:
        tools = self.tools_for(ctx)
        specs = [s.to_openai() for s in disclosure.specs(tools.specs(), hidden)]
        try:
            while True:
                for i in range(index, len(calls)):
                    if calls[i].name == LOAD_TOOLS:
                        self._load_step(turn, calls[i], disclosure, tools.specs(hidden), messages)
                        specs = [s.to_openai() for s in disclosure.specs(tools.specs(), hidden)]
                        continue
                    try:
                        loads = await self._tool_step(
                            turn, calls[i], tools, ctx, messages, approvals
                        )
                    except ApprovalRequired as ask:
                        assert approvals is not None  # only TurnApprovals raises it
                        turn.result.parked = Checkpoint(
                            "agent",
                            approvals.current,
                            ask.title,
                            ask.detail,
                            messages,
                            calls,
                            i,
                            step,
                            hidden,
                            list(turn.tainted),
                            turn.result.messages,
                            turn.result.audit,
                            turn.result.tool_calls,
                            turn.result.llm_seconds,
                            loaded_tools=list(disclosure.loaded),
                            files=list(turn.result.files),
                        )
                        return turn.result
                    if loads:  # e.g. panel_open: the new panel's tools, with their schemas
                        tools = self.tools_for(ctx)
                        disclosure.show(loads)
                        specs = [s.to_openai() for s in disclosure.specs(tools.specs(), hidden)]
                if step >= self._config.max_steps:
                    return _finish(
                        turn,
                        f"I stopped after {self._config.max_steps} steps without reaching an "
                        "answer. Ask again more specifically, or raise agent.max_steps.",
                        error="step_limit",
                    )
                # The first call plans (llm.routes.plan); calls after tool results execute.
                route = "plan" if step == 0 else "execute"
                client = await self._models.client_for(
                    route, user_id=ctx.user_id, scope="user", purpose="chat"
                )
                response = await self.steps.call_model(turn, client, messages, specs, route)
                step += 1
                if not response.tool_calls:
                    return _finish(turn, response.content)
                calls, index = list(response.tool_calls), 0
                wire = [c.to_openai() for c in calls]
                messages.append(
                    {"role": "assistant", "content": response.content, "tool_calls": wire}
                )
                turn.result.messages.append(
                    NewMessage("assistant", response.content, tool_calls=wire)
                )
        except BudgetExhausted as exc:
            return _finish(turn, exc.message, error="budget_exhausted", detail=exc)
        except NoModelConfigured as exc:
            return _finish(turn, exc.message, error="no_model")
        except ProviderRejected as exc:
            return _finish(
                turn, f"The model call was refused: {exc.message}", error="provider_rejected"
            )
        except LLMError as exc:
            return _finish(
                turn,
                f"The model provider is not answering ({exc.message}). Your message is saved; "
                "send it again in a minute, or check the provider with `nexflow doctor`.",
                error="provider_unavailable",
            )

    def _load_step(
        self,
        turn: TurnState,
        call: ToolCall,
        disclosure: Disclosure,
        offered: Sequence[ToolSpec],
        messages: list[dict[str, Any]],
    ) -> None:
        """``load_tools``: no effects, nothing to check; the next model call sees the schemas."""
        try:
            args = json.loads(call.arguments or "{}")
        except ValueError:
            args = None
        content = (
            disclosure.load(args, offered)
            if isinstance(args, dict)
            else 'error: the arguments must be a JSON object like {"names": ["tool"]}'
        )
        messages.append(
            {"role": "tool", "tool_call_id": call.id, "name": call.name, "content": content}
        )
        turn.result.messages.append(
            NewMessage("tool", content, tool_call_id=call.id, name=call.name)
        )

    async def _tool_step(
        self,
        turn: TurnState,
        call: ToolCall,
        tools: Toolset,
        ctx: ToolContext,
        messages: list[dict[str, Any]],
        approvals: TurnApprovals | None,
    ) -> tuple[str, ...]:
        """Run one call; returns the deferred tools its result asks to show the model."""
        outcome = await self.steps.call_tool(turn, call, tools, ctx, approvals)
        messages.append(
            {"role": "tool", "tool_call_id": call.id, "name": call.name, "content": outcome.content}
        )
        turn.result.messages.append(
            NewMessage("tool", outcome.content, tool_call_id=call.id, name=call.name)
        )
        return outcome.loads


def _context(event: InboundEvent, session: SessionRecord) -> ToolContext:
    return ToolContext(
        user_id=event.user_id or session.user_id,
        session_id=session.id,
        channel=event.channel,
        chat_id=event.chat_id,
    )


def _finish(
    turn: TurnState, text: str, error: str | None = None, detail: BudgetExhausted | None = None
) -> TurnResult:
    turn.result.reply = text
    turn.result.error = error
    turn.result.error_detail = detail
    turn.result.messages.append(NewMessage("assistant", text))
    return turn.result


def decline_rest(checkpoint: Checkpoint, reason: str) -> list[NewMessage]:
    """History messages closing a parked turn that will not run: a tool answer for the
    waiting call and every call after it, so each call has its answer."""
    return [
        *checkpoint.history,
        *(
            NewMessage("tool", f"error: not run: {reason}", tool_call_id=c.id, name=c.name)
            for c in checkpoint.calls[checkpoint.index :]
        ),
    ]
