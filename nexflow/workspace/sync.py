"""Explicit sync: ask a (cheap) model which other panels and files a change affects.

The prompt carries the NOG context (what exists and how it connects), the source
panel's current state and its latest change; the model answers JSON that
:class:`SyncAnswer` validates. The call goes through the budget gate
(:mod:`nexflow.llm.gate`) in the *background* scope: it reserves the prompt's estimate +
``sync_reply_tokens`` from the user's background budget before it is made (and stops at
the user's hard stop too), is settled with the real usage afterwards, and is audited as
an ``llm_call`` with purpose ``sync``. A refusal is :class:`BudgetExhausted` (HTTP 429).
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import Mapping, Sequence
from typing import Any, Protocol

from pydantic import BaseModel, ConfigDict, Field, JsonValue, ValidationError, model_validator

from nexflow.config.model import WorkspacesConfig
from nexflow.llm import errors as llm_errors
from nexflow.llm.client import LLMClient, LLMRequest, LLMResponse
from nexflow.llm.errors import LLMError
from nexflow.storage.base import AuditRecord
from nexflow.workspace.api import BudgetExhausted, SyncFailed

_FENCE = re.compile(r"^```[a-zA-Z]*\s*|\s*```$")

SYSTEM = """You keep a workspace of panels and files consistent. The user changed one \
panel and asked for a sync. Using the Nexus Object Graph (NOG) below, decide which OTHER \
panels or files must change so they agree with that change, and how.

Answer with JSON only, no prose:
{"changes": [{"target": "panel:<panel id>", "summary": "<one line>",
  "state": {"<declared key>": <new whole value>}, "append": {"<list key>": [<new items>]}},
 {"target": "file:<relative path>", "summary": "<one line>", "text": "<new full text>"}]}
Rules: only panels and files that exist in the NOG (or new files under notes/); only \
state keys the NOG declares, with values of their type; prefer "append" to add items to \
a list; never target the source panel; {"changes": []} when nothing needs to change."""


class SyncChange(BaseModel):
    """One affected target in the model's answer."""

    model_config = ConfigDict(extra="ignore", frozen=True)

    target: str = Field(min_length=3, max_length=300)
    summary: str = Field(min_length=1, max_length=200)
    state: dict[str, JsonValue] | None = None
    append: dict[str, list[JsonValue]] | None = None
    nxml: str | None = None
    text: str | None = None

    @model_validator(mode="after")
    def _shape(self) -> SyncChange:
        if self.target.startswith("file:"):
            if self.text is None:
                raise ValueError("a file target needs the new 'text'")
        elif self.target.startswith("panel:"):
            if not self.state and not self.append and self.nxml is None:
                raise ValueError("a panel target needs 'state', 'append' or 'nxml'")
        else:
            raise ValueError("target must start with 'panel:' or 'file:'")
        return self

    def content(self) -> str:
        if self.target.startswith("file:"):
            return self.text or ""
        body: dict[str, Any] = {}
        if self.state:
            body["state"] = self.state
        if self.append:
            body["append"] = self.append
        if self.nxml is not None:
            body["nxml"] = self.nxml
        return json.dumps(body, ensure_ascii=False)


class SyncAnswer(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True)

    changes: list[SyncChange] = Field(default_factory=list)


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


def parse_answer(text: str, max_changes: int) -> SyncAnswer:
    """The model's JSON answer, or :class:`SyncFailed` saying what is wrong with it."""
    raw = _FENCE.sub("", text.strip())
    start, end = raw.find("{"), raw.rfind("}")
    try:
        value = json.loads(raw[start : end + 1] if 0 <= start < end else raw)
    except json.JSONDecodeError as exc:
        raise SyncFailed(
            f"the model's sync answer is not valid JSON ({exc.msg}); no patch was made",
            "try /sync again, or route workspaces.sync_route to a model that follows JSON",
        ) from exc
    try:
        answer = SyncAnswer.model_validate(value)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first.get("loc", ())) or "answer"
        raise SyncFailed(
            f"the model's sync answer has the wrong shape ({where}: {first.get('msg')}); "
            "no patch was made",
            "try /sync again",
        ) from exc
    if len(answer.changes) > max_changes:
        raise SyncFailed(
            f"the model proposed {len(answer.changes)} changes, more than the "
            f"{max_changes} one sync may make; no patch was made",
            "raise workspaces.sync_max_changes, or sync a smaller change",
        )
    return answer


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
    """Makes the one model call of a sync: budget, route, audit, validation."""

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

    async def ask(self, user_id: str, panel_id: str, messages: list[dict[str, Any]]) -> SyncAnswer:
        started = time.perf_counter()
        try:
            client = await self._gate.client_for(
                self.route,
                user_id=user_id,
                scope="background",
                purpose="sync",
                completion_tokens=self._config.sync_reply_tokens,
            )
            response = await client.complete(LLMRequest(messages=messages, route=self.route))
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
            raise SyncFailed(
                f"the model could not be asked for the sync: {exc.message}", "try again later"
            ) from exc
        await self._record(user_id, panel_id, "ok", _usage(response), model=response.model)
        return parse_answer(response.content, self._config.sync_max_changes)

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
