"""What one agent turn runs with, for flow agent nodes and named agents (``docs/flows.md``).

:class:`AgentTurn` is the turn's persona, tool allowlist, model route and token cap;
:class:`Routed` is the budget gate on that route (with ``flow`` as the purpose in its
log), capped at the token budget; :class:`Allowlisted` narrows the owner's toolset;
:func:`invocation` is the record of one invocation of a named agent.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from nexflow.flows.host import NodeResult
from nexflow.llm.client import DeltaSink, LLMClient, LLMRequest, LLMResponse
from nexflow.llm.errors import BudgetExhausted
from nexflow.orchestrator.agent import ModelSource
from nexflow.storage.repo_agents import AgentInvocation
from nexflow.tools.base import ToolContext
from nexflow.tools.toolset import Toolbox, Toolset


@dataclass(frozen=True, slots=True)
class AgentTurn:
    """What one agent turn runs with: persona text for the system prompt, a tool
    allowlist (None: the owner's default toolset), a model route, a token cap."""

    persona: str = ""
    tools: Sequence[str] | None = None
    route: str | None = None
    budget_tokens: int | None = None


def invocation(
    key: str,
    owner: str,
    agent: str,
    source: str,
    prompt: str,
    result: NodeResult,
    duration_s: float,
    created_at: float,
) -> AgentInvocation:
    """The record of one invocation of a named agent."""
    return AgentInvocation(
        id=key,
        user_id=owner,
        agent=agent,
        source=source,
        input=prompt,
        output=None if result.output is None else str(result.output),
        status="ok" if result.ok else "error",
        error=result.error,
        duration_s=round(duration_s, 4),
        tokens_in=result.tokens_in,
        tokens_out=result.tokens_out,
        created_at=created_at,
    )


class Routed:
    """The budget gate with the node's model route instead of the turn's own (and
    ``flow`` as the purpose in its log), capped at ``budget_tokens`` for the turn."""

    def __init__(self, models: ModelSource, route: str | None, budget_tokens: int | None) -> None:
        self._models = models
        self._route = route
        self._cap = _Cap(budget_tokens) if budget_tokens else None

    async def client_for(
        self, route: str, *, user_id: str, scope: str = "user", purpose: str = ""
    ) -> LLMClient:
        client = await self._models.client_for(
            self._route or route, user_id=user_id, scope=scope, purpose="flow"
        )
        return client if self._cap is None else _Capped(client, self._cap)


class _Cap:
    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.used = 0


class _Capped:
    """Refuses the next model call of a turn once the agent's token cap is used up (the
    user's own budgets still apply: the inner client is the budget gate's)."""

    def __init__(self, inner: LLMClient, cap: _Cap) -> None:
        self._inner = inner
        self._cap = cap

    async def complete(self, request: LLMRequest, on_delta: DeltaSink | None = None) -> LLMResponse:
        if self._cap.used >= self._cap.limit:
            raise BudgetExhausted(
                f"this agent's budget of {self._cap.limit} tokens per invocation is used up",
                period="agent",
                limit=self._cap.limit,
                used=self._cap.used,
            )
        response = await self._inner.complete(request, on_delta)
        self._cap.used += response.usage.prompt_tokens + response.usage.completion_tokens
        return response


class Allowlisted(Toolbox):
    """The owner's tools, only those named in the agent node's allowlist."""

    def __init__(self, inner: Toolbox, allowed: set[str]) -> None:
        super().__init__(inner.builtins)
        self._inner = inner
        self._allowed = allowed

    def tools_for(self, ctx: ToolContext) -> Toolset:
        mine = self._inner.tools_for(ctx)
        return Toolset([t for t in mine if t.spec.name in self._allowed])
