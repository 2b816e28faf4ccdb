"""The two kinds of step in a turn: a model call and a tool call, each metered and audited.

:class:`TurnState` is the mutable state of one turn in progress (what it has produced so
far, and its taint). :class:`Steps` runs a model call or a tool call against it:

* a model call goes through the budgeted client the orchestrator was given, and every
  outcome is counted (metrics) and audited (``llm_call``);
* a tool call is looked up in the caller's :class:`~nexflow.tools.toolset.Toolset` only,
  passes the trust gate (:class:`~nexflow.trust.TrustGate`: after untrusted output
  entered the turn, writes and egress need the user's confirmation), runs with a timeout,
  and its output reaches the model framed as data (``nexflow.trust.framing``).
  ``ctx.confirm`` inside the call is bound to the call's exact arguments
  (:class:`~nexflow.tools.approval.TurnApprovals`); a call the user has not answered yet
  raises :class:`~nexflow.tools.base.ApprovalRequired`, which ends the step and parks
  the turn.
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import structlog

from nexflow.bus.events import InboundEvent, Outbound
from nexflow.bus.streams import StreamEvent
from nexflow.llm.client import LLMClient, LLMRequest, LLMResponse, ToolCall
from nexflow.llm.errors import BudgetExhausted, LLMError
from nexflow.observability.metrics import Metrics
from nexflow.orchestrator.checkpoint import Checkpoint
from nexflow.storage.base import AuditRecord, NewMessage, SessionRecord
from nexflow.tools.approval import TurnApprovals, call_key
from nexflow.tools.base import (
    ApprovalRequired,
    Attachment,
    Tool,
    ToolContext,
    ToolError,
    ToolResult,
)
from nexflow.tools.toolset import Toolset
from nexflow.trust import TrustGate, effects_of

log = structlog.get_logger("nexflow.orchestrator")
StreamSink = Callable[[StreamEvent], Awaitable[None]]


@dataclass(slots=True)
class TurnResult:
    reply: str
    messages: list[NewMessage]
    audit: list[AuditRecord]
    tool_calls: list[dict[str, Any]] = field(default_factory=list)
    error: str | None = None
    llm_seconds: float = 0.0
    outbound: Outbound | None = None  # replaces the plain text reply (e.g. a panel snapshot)
    files: list[Attachment] = field(default_factory=list)  # sent after the reply (send_file)
    # Set when the turn stopped to wait for the user's approval (the turn runner parks it).
    parked: Checkpoint | None = None
    error_detail: BudgetExhausted | None = None  # the refusal that ended the turn


@dataclass(slots=True)
class TurnState:
    """Mutable state of one turn in progress."""

    event: InboundEvent
    session: SessionRecord
    sink: StreamSink | None
    result: TurnResult
    tainted: list[str] = field(default_factory=list)


class Steps:
    def __init__(
        self,
        metrics: Metrics,
        *,
        tool_timeout_s: float,
        output_chars: int,
        gate: TrustGate | None = None,
    ) -> None:
        self._metrics = metrics
        self._tool_timeout_s = tool_timeout_s
        self._output_chars = output_chars
        self.gate = gate

    # -- model calls ------------------------------------------------------------------

    async def call_model(
        self,
        turn: TurnState,
        client: LLMClient,
        messages: list[dict[str, Any]],
        tools: list[dict[str, Any]],
        route: str,
    ) -> LLMResponse:
        sink = turn.sink

        async def on_delta(text: str) -> None:
            if sink is not None:
                await sink({"type": "token", "text": text})

        started = time.perf_counter()
        model = getattr(client, "model", "unknown")
        try:
            response = await client.complete(
                LLMRequest(messages=messages, tools=tools, route=route),
                on_delta if sink is not None else None,
            )
        except LLMError as exc:
            elapsed = time.perf_counter() - started
            turn.result.llm_seconds += elapsed
            self._metrics.llm_calls.labels(exc.model or model, "error").inc()
            data = {"error": exc.message, "latency_s": round(elapsed, 4), "route": route}
            turn.result.audit.append(audit(turn, "llm_call", exc.model or model, "error", data))
            raise
        turn.result.llm_seconds += time.perf_counter() - started
        usage = response.usage
        m = self._metrics
        # A response-cache hit made no provider call: its own outcome, no latency, no cost.
        outcome = "cache_hit" if response.cached else "ok"
        m.llm_calls.labels(response.model, outcome).inc()
        if not response.cached:
            m.llm_latency.labels(response.model).observe(response.latency_s)
        m.llm_tokens.labels(response.model, "in").inc(usage.prompt_tokens)
        m.llm_tokens.labels(response.model, "out").inc(usage.completion_tokens)
        m.llm_cost.labels(response.model).inc(usage.cost_usd)
        turn.result.audit.append(
            audit(
                turn,
                "llm_call",
                response.model,
                outcome,
                {
                    "tokens_in": usage.prompt_tokens,
                    "tokens_out": usage.completion_tokens,
                    "cost_usd": usage.cost_usd,
                    "latency_s": round(response.latency_s, 4),
                    "tool_calls": [c.name for c in response.tool_calls],
                    "route": route,
                    **({"fallback_from": response.fallback_from} if response.fallback_from else {}),
                },
            )
        )
        return response

    # -- tool calls -------------------------------------------------------------------

    async def call_tool(
        self,
        turn: TurnState,
        call: ToolCall,
        tools: Toolset,
        ctx: ToolContext,
        approvals: TurnApprovals | None,
    ) -> ToolResult:
        """Run one call; raises :class:`ApprovalRequired` when the user must answer first."""
        started = time.perf_counter()
        if turn.sink is not None:
            await turn.sink({"type": "tool_call", "name": call.name, "arguments": call.arguments})
        untrusted, label = False, call.name
        try:
            args = parse_args(call.arguments)
            tool = tools.get(call.name)
            if approvals is not None:
                approvals.bind(call_key(call.name, args))
            call_ctx = dataclasses.replace(
                ctx,
                confirm=approvals.confirm if approvals is not None else None,
                tainted=tuple(turn.tainted),
            )
            result = await self._gated(tool, args, call_ctx, turn.event.metadata.get("lang"))
            untrusted = (
                self.gate.untrusted(tool, args, result)
                if self.gate is not None
                else result.untrusted or tool.spec.untrusted_output
            )
            if untrusted:  # the source as the gate's cards name it (run_skill:http-request)
                label = effects_of(tool, args).label
            outcome = "error" if result.is_error else "ok"
        except ApprovalRequired:
            raise
        except ToolError as exc:
            result, outcome = ToolResult(f"error: {exc.message}", is_error=True), "error"
        except TimeoutError:
            result = ToolResult(
                f"error: the tool did not finish within {self._tool_timeout_s:.0f} s", is_error=True
            )
            outcome = "timeout"
        except Exception:
            log.exception("tool_crashed", tool=call.name)
            result, outcome = (
                ToolResult("error: the tool failed unexpectedly", is_error=True),
                "crash",
            )
        if untrusted and label not in turn.tainted:
            turn.tainted.append(label)
        raw = result.content[: self._output_chars]
        framed = (
            self.gate.frame(call.name, raw, untrusted=untrusted) if self.gate is not None else raw
        )
        elapsed = time.perf_counter() - started
        self._metrics.tool_calls.labels(call.name, outcome).inc()
        data: dict[str, Any] = {
            "arguments": call.arguments[:2000],
            "result": raw[:2000],
            "duration_s": round(elapsed, 4),
        }
        if untrusted:
            data["untrusted"] = True
        turn.result.audit.append(audit(turn, "tool_call", call.name, outcome, data))
        turn.result.tool_calls.append(
            {
                "name": call.name,
                "arguments": call.arguments,
                "ok": not result.is_error,
                "result": raw,
            }
        )
        if turn.sink is not None:
            await turn.sink(
                {
                    "type": "tool_result",
                    "name": call.name,
                    "ok": not result.is_error,
                    "content": raw,
                }
            )
        turn.result.files.extend(result.files)
        return ToolResult(framed, result.is_error, result.data, untrusted, result.loads)

    async def _gated(
        self, tool: Tool, args: dict[str, Any], ctx: ToolContext, lang: str | None
    ) -> ToolResult:
        """The trust gate first (it may ask, i.e. park the turn), then the tool."""
        if self.gate is not None:
            ctx, refusal = await self.gate.authorize(tool, args, ctx, lang=lang)
            if refusal is not None:
                return refusal
        async with asyncio.timeout(self._tool_timeout_s):
            return await tool.run(args, ctx)


def audit(
    turn: TurnState, kind: str, name: str, outcome: str, data: Mapping[str, Any]
) -> AuditRecord:
    return AuditRecord(kind, name, outcome, turn.event.user_id, turn.session.id, dict(data))


def parse_args(raw: str) -> dict[str, Any]:
    try:
        value = json.loads(raw or "{}")
    except json.JSONDecodeError as exc:
        raise ToolError(
            f"the arguments are not valid JSON ({exc.msg}); send a JSON object"
        ) from exc
    if not isinstance(value, dict):
        raise ToolError("the arguments must be a JSON object")
    return value
