"""Explicit sync: ask a (cheap) model which other panels and files a change affects.

The prompt carries the NOG context (what exists and how it connects), the source
panel's current state and its latest change; the model answers by calling the
``propose_changes`` tool, whose arguments :class:`SyncAnswer` validates
(:mod:`nexflow.workspace.sync_reply`; JSON in plain text is accepted too, for models
that do not call tools). An unusable answer gets one correction round: the model is
told what was wrong and asked again; if that fails too the sync is
:class:`SyncUnusable` (HTTP 422) saying what was wrong, and no patch is made.

Each call goes through the budget gate (:mod:`nexflow.llm.gate`) in the *background*
scope: it reserves the prompt's estimate + ``sync_reply_tokens`` from the user's
background budget before it is made (and stops at the user's hard stop too), is settled
with the real usage afterwards, and is audited as an ``llm_call`` with purpose ``sync``.
A refusal is :class:`BudgetExhausted` (HTTP 429); a provider that cannot be reached is
:class:`SyncFailed` (HTTP 502).
"""

from __future__ import annotations

import json
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from typing import Any, Protocol

from nexflow.config.model import WorkspacesConfig
from nexflow.llm import errors as llm_errors
from nexflow.llm.client import LLMClient, LLMRequest, LLMResponse
from nexflow.llm.errors import LLMError
from nexflow.storage.base import AuditRecord
from nexflow.workspace.api import BudgetExhausted, SyncFailed, SyncUnusable, WorkspaceError
from nexflow.workspace.sync_reply import (
    PROPOSE_TOOL,
    TOOL_NAME,
    SyncAnswer,
    SyncChange,
    parse_answer,
    read_reply,
)

__all__ = [
    "SYSTEM",
    "AuditSink",
    "Check",
    "ModelGate",
    "SyncAnswer",
    "SyncChange",
    "SyncModel",
    "SyncUnusable",
    "build_prompt",
    "parse_answer",
]

SYSTEM = f"""You keep a workspace of panels and files consistent. The user changed one \
panel and asked for a sync. Using the Nexus Object Graph (NOG) below, decide which OTHER \
panels or files must change so they agree with that change, and how.

Answer by calling the {TOOL_NAME} tool once, with every change:
{{"changes": [{{"target": "panel:<panel id>", "summary": "<one line>",
  "state": {{"<declared key>": <new whole value>}}, "append": {{"<list key>": [<new items>]}}}},
 {{"target": "file:<relative path>", "summary": "<one line>", "text": "<new full text>"}}]}}
(If you cannot call tools, answer that JSON only, no prose.)
Rules: only panels and files that exist in the NOG (or new files under notes/); only \
state keys the NOG declares, with values of their type; prefer "append" to add items to \
a list; never target the source panel; {{"changes": []}} when nothing needs to change."""

CORRECTION_ROUNDS = 1
"""How many times an unusable answer is sent back with what was wrong (each is a call)."""

Check = Callable[[SyncAnswer], Awaitable[None]]
"""The caller's own check of an answer (targets exist, values fit); a
:class:`WorkspaceError` it raises is sent back to the model as what was wrong."""


class ModelGate(Protocol):
    """The budget gate (:class:`~nexflow.llm.gate.BudgetGate`)."""

    async def client_for(
        self,
        route: str,
        *,
        user_id: str,
        scope: str = "user",
        purpose: str = "",
        completion_tokens: int | None = None,
    ) -> LLMClient: ...


class AuditSink(Protocol):
    async def audit(self, records: Sequence[AuditRecord]) -> None: ...


def build_prompt(
    context: str, panel_id: str, state: Mapping[str, Any], change: Mapping[str, Any]
) -> list[dict[str, Any]]:
    user = (
        f"{context}\n\nSource panel: {panel_id}\n"
        f"Its current state: {json.dumps(state, ensure_ascii=False, sort_keys=True)}\n"
        f"Its latest change: {json.dumps(change, ensure_ascii=False, sort_keys=True)}"
    )
    return [{"role": "system", "content": SYSTEM}, {"role": "user", "content": user}]


class SyncModel:
    """Makes the model calls of a sync (one, or two with a correction): budget, route,
    audit, validation."""

    def __init__(
        self,
        config: WorkspacesConfig,
        routes: Mapping[str, str],
        gate: ModelGate,
        audit: AuditSink,
    ) -> None:
        self._config = config
        self._gate = gate
        self._audit = audit
        route = config.sync_route
        if route not in routes:
            route = "summarize" if "summarize" in routes else "execute"
        self.route = route

    async def ask(
        self,
        user_id: str,
        panel_id: str,
        messages: list[dict[str, Any]],
        check: Check | None = None,
    ) -> SyncAnswer:
        """The model's changes, read and checked; one correction round when unusable."""
        conversation = list(messages)
        problems: list[str] = []
        tools = True
        for _ in range(1 + CORRECTION_ROUNDS):
            try:
                response = await self._call(user_id, panel_id, conversation, tools)
            except _ToolsRefused:
                # A model served without tool support (some Ollama and llama.cpp models
                # answer 400): ask it again for the JSON in its text, once per sync.
                tools = False
                response = await self._call(user_id, panel_id, conversation, tools)
            try:
                answer = read_reply(response, self._config.sync_max_changes)
                if check is not None:
                    await check(answer)
                return answer
            except WorkspaceError as exc:
                problems.append(exc.message)
                last = exc
                conversation += _correction(response, exc.message, tools)
        # Not an llm_call (each call was audited as one): the sync's own outcome.
        record = AuditRecord(
            "workspace_sync", panel_id, "unusable", user_id, None, {"problems": problems}
        )
        await self._audit.audit([record])
        first, final = problems[0], problems[-1]
        message = first if first == final else f"{first} — asked to correct it: {final}"
        raise SyncUnusable(message, last.hint or "try /sync again")

    async def _call(
        self, user_id: str, panel_id: str, messages: list[dict[str, Any]], tools: bool
    ) -> LLMResponse:
        started = time.perf_counter()
        try:
            client = await self._gate.client_for(
                self.route,
                user_id=user_id,
                scope="background",
                purpose="sync",
                completion_tokens=self._config.sync_reply_tokens,
            )
            offered = (PROPOSE_TOOL,) if tools else ()
            response = await client.complete(
                LLMRequest(messages=messages, tools=offered, route=self.route)
            )
        except llm_errors.BudgetExhausted as exc:
            raise await self._refused(user_id, panel_id, exc) from exc
        except LLMError as exc:
            await self._record(
                user_id,
                panel_id,
                "error",
                {"error": exc.message, "latency_s": round(time.perf_counter() - started, 4)},
                model=exc.model,
            )
            if tools and isinstance(exc, llm_errors.ProviderRejected):
                raise _ToolsRefused from exc
            raise SyncFailed(
                f"the model could not be asked for the sync: {exc.message}", "try again later"
            ) from exc
        await self._record(user_id, panel_id, "ok", _usage(response), model=response.model)
        return response

    async def _refused(
        self, user_id: str, panel_id: str, exc: llm_errors.BudgetExhausted
    ) -> BudgetExhausted:
        """Audit the refusal; the workspace error for it (HTTP 429)."""
        data = {"purpose": "sync", "panel": panel_id, "used": exc.used, "limit": exc.limit}
        await self._audit.audit([AuditRecord("budget", exc.period, "refused", user_id, None, data)])
        if exc.period == "background":
            return BudgetExhausted(
                f"the background token budget for today is used up ({exc.used} of "
                f"{exc.limit} tokens); a sync of {panel_id} needs more",
                "try again tomorrow, or raise budgets.background_daily_tokens",
            )
        return BudgetExhausted(
            f"your {exc.period} token budget of {exc.limit} tokens is used up; no model was "
            f"asked for the sync of {panel_id}",
            "try again once it resets, or ask the owner to raise "
            f"budgets.per_user_{exc.period}_tokens",
        )

    async def _record(
        self,
        user_id: str,
        panel_id: str,
        outcome: str,
        data: dict[str, Any],
        *,
        model: str = "",
    ) -> None:
        data = {**data, "route": self.route, "purpose": "sync", "panel": panel_id}
        await self._audit.audit(
            [AuditRecord("llm_call", model or self.route, outcome, user_id, None, data)]
        )


def _usage(response: LLMResponse) -> dict[str, Any]:
    u = response.usage
    return {
        "tokens_in": u.prompt_tokens,
        "tokens_out": u.completion_tokens,
        "cost_usd": u.cost_usd,
        "latency_s": round(response.latency_s, 4),
    }


class _ToolsRefused(Exception):
    """The provider refused the request that offered the tool (HTTP 4xx)."""


def _correction(response: LLMResponse, problem: str, tools: bool) -> list[dict[str, Any]]:
    """The model's answer and what was wrong with it, as the next turn of the
    conversation: a tool result for each call it made, else a user message."""
    again = f"Call {TOOL_NAME} again, correctly." if tools else "Answer again: the JSON only."
    told = f"That answer cannot be used: {problem}. {again}"
    said: dict[str, Any] = {"role": "assistant", "content": response.content or ""}
    if not response.tool_calls:
        return [said, {"role": "user", "content": told}]
    said["tool_calls"] = [c.to_openai() for c in response.tool_calls]
    return [said] + [
        {"role": "tool", "tool_call_id": c.id, "name": c.name, "content": told}
        for c in response.tool_calls
    ]
