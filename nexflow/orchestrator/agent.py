"""The agent loop for one turn."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Awaitable, Callable, Collection, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

import structlog

from nexflow.bus.events import InboundEvent, Outbound
from nexflow.bus.streams import StreamEvent
from nexflow.config.model import AgentConfig
from nexflow.llm.client import LLMClient, LLMRequest, LLMResponse, ToolCall
from nexflow.llm.errors import LLMError, NoModelConfigured, ProviderRejected
from nexflow.observability.metrics import Metrics
from nexflow.orchestrator.context import history_messages, skills_used, system_prompt
from nexflow.orchestrator.persona import PersonaFiles
from nexflow.storage.base import AuditRecord, MessageRecord, NewMessage, SessionRecord
from nexflow.tools.base import ToolContext, ToolError, ToolResult
from nexflow.tools.registry import ToolRegistry

log = structlog.get_logger("nexflow.orchestrator")
StreamSink = Callable[[StreamEvent], Awaitable[None]]
# (user id, skills used in the history) → the user's own prompt section (memory/userfiles.py)
UserContext = Callable[[str, Collection[str]], Awaitable[str]]


class ModelSource(Protocol):
    async def client_for(self, route: str = "execute") -> LLMClient: ...


@dataclass(slots=True)
class TurnResult:
    reply: str
    messages: list[NewMessage]
    audit: list[AuditRecord]
    tool_calls: list[dict[str, Any]] = field(default_factory=list)
    error: str | None = None
    llm_seconds: float = 0.0
    outbound: Outbound | None = None  # replaces the plain text reply (e.g. a panel snapshot)


@dataclass(slots=True)
class _Turn:
    """Mutable state of one turn in progress."""

    event: InboundEvent
    session: SessionRecord
    sink: StreamSink | None
    result: TurnResult


class Orchestrator:
    def __init__(
        self,
        models: ModelSource,
        tools: ToolRegistry,
        config: AgentConfig,
        persona: PersonaFiles,
        metrics: Metrics,
        tool_timeout_s: float = 600.0,
        context_sections: Callable[[], str] | None = None,
        user_context: UserContext | None = None,
    ) -> None:
        self._models = models
        self._tools = tools
        self._config = config
        self._persona = persona
        self._metrics = metrics
        self._tool_timeout_s = tool_timeout_s
        self._sections = context_sections
        self._user_context = user_context

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
            self._persona.text(), self._config.system_prompt, extra, user=user, paged=paged
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
    ) -> TurnResult:
        """One turn. ``paged``: the prompt section on paged-out history; ``hidden_tools``:
        registered tools not offered this turn (the paging tools in a session without pages)."""
        turn = _Turn(event, session, sink, TurnResult("", [NewMessage("user", event.message)], []))
        user_id = event.user_id or session.user_id
        messages = await self.build_messages(history, event.message, user_id=user_id, paged=paged)
        tool_specs = [s.to_openai() for s in self._tools.specs() if s.name not in hidden_tools]
        ctx = ctx or ToolContext(
            user_id=event.user_id or "",
            session_id=session.id,
            channel=event.channel,
            chat_id=event.chat_id,
        )
        try:
            for step in range(self._config.max_steps):
                # The first call plans (llm.routes.plan); calls after tool results execute.
                route = "plan" if step == 0 else "execute"
                client = await self._models.client_for(route)
                response = await self._call_model(turn, client, messages, tool_specs, route)
                if not response.tool_calls:
                    return self._finish(turn, response.content)
                calls = [c.to_openai() for c in response.tool_calls]
                messages.append(
                    {"role": "assistant", "content": response.content, "tool_calls": calls}
                )
                turn.result.messages.append(
                    NewMessage("assistant", response.content, tool_calls=calls)
                )
                for call in response.tool_calls:
                    outcome = await self._run_tool(turn, call, ctx)
                    messages.append(
                        {
                            "role": "tool",
                            "tool_call_id": call.id,
                            "name": call.name,
                            "content": outcome.content,
                        }
                    )
                    turn.result.messages.append(
                        NewMessage("tool", outcome.content, tool_call_id=call.id, name=call.name)
                    )
            return self._finish(
                turn,
                f"I stopped after {self._config.max_steps} steps without reaching an answer. "
                "Ask again more specifically, or raise agent.max_steps.",
                error="step_limit",
            )
        except NoModelConfigured as exc:
            return self._finish(turn, exc.message, error="no_model")
        except ProviderRejected as exc:
            return self._finish(
                turn, f"The model call was refused: {exc.message}", error="provider_rejected"
            )
        except LLMError as exc:
            return self._finish(
                turn,
                f"The model provider is not answering ({exc.message}). Your message is saved; "
                "send it again in a minute, or check the provider with `nexflow doctor`.",
                error="provider_unavailable",
            )

    def _finish(self, turn: _Turn, text: str, error: str | None = None) -> TurnResult:
        turn.result.reply = text
        turn.result.error = error
        turn.result.messages.append(NewMessage("assistant", text))
        return turn.result

    async def _call_model(
        self,
        turn: _Turn,
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
            turn.result.audit.append(
                self._audit(
                    turn,
                    "llm_call",
                    exc.model or model,
                    "error",
                    {"error": exc.message, "latency_s": round(elapsed, 4)},
                )
            )
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
            self._audit(
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

    async def _run_tool(self, turn: _Turn, call: ToolCall, ctx: ToolContext) -> ToolResult:
        started = time.perf_counter()
        if turn.sink is not None:
            await turn.sink({"type": "tool_call", "name": call.name, "arguments": call.arguments})
        try:
            args = _parse_args(call.arguments)
            tool = self._tools.get(call.name)
            async with asyncio.timeout(self._tool_timeout_s):
                result = await tool.run(args, ctx)
            outcome = "error" if result.is_error else "ok"
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
        content = result.content[: self._config.tool_output_chars]
        result = ToolResult(content, result.is_error, result.data)
        elapsed = time.perf_counter() - started
        self._metrics.tool_calls.labels(call.name, outcome).inc()
        turn.result.audit.append(
            self._audit(
                turn,
                "tool_call",
                call.name,
                outcome,
                {
                    "arguments": call.arguments[:2000],
                    "result": content[:2000],
                    "duration_s": round(elapsed, 4),
                },
            )
        )
        turn.result.tool_calls.append(
            {
                "name": call.name,
                "arguments": call.arguments,
                "ok": not result.is_error,
                "result": content,
            }
        )
        if turn.sink is not None:
            await turn.sink(
                {
                    "type": "tool_result",
                    "name": call.name,
                    "ok": not result.is_error,
                    "content": content,
                }
            )
        return result

    @staticmethod
    def _audit(
        turn: _Turn, kind: str, name: str, outcome: str, data: Mapping[str, Any]
    ) -> AuditRecord:
        return AuditRecord(kind, name, outcome, turn.event.user_id, turn.session.id, dict(data))


def _parse_args(raw: str) -> dict[str, Any]:
    try:
        value = json.loads(raw or "{}")
    except json.JSONDecodeError as exc:
        raise ToolError(
            f"the arguments are not valid JSON ({exc.msg}); send a JSON object"
        ) from exc
    if not isinstance(value, dict):
        raise ToolError("the arguments must be a JSON object")
    return value
