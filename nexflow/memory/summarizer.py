"""The ``summarize`` route for context paging: a page's summary and its durable facts.

One model call per page, audited (``llm_call``, route ``summarize``), counted in the
metrics and made through the budget gate (:mod:`nexflow.llm.gate`) in the user's scope:
reserved before it is sent, charged to the user's budget when it settles, and not made at
all for a user at a hard limit (:attr:`Outcome.UNAVAILABLE`: the page gets the fallback
summary and its flush is retried later). The answer is validated here, once; anything
that is not the JSON asked for is :attr:`Outcome.UNUSABLE`.
"""

from __future__ import annotations

import json
import time
from enum import Enum
from typing import Protocol

import structlog
from pydantic import BaseModel, Field, ValidationError

from nexflow.llm.client import LLMClient, LLMRequest
from nexflow.llm.errors import BudgetExhausted, LLMError
from nexflow.memory.transcript import MAX_SUMMARY_CHARS, clip_text
from nexflow.observability.metrics import Metrics
from nexflow.storage.base import Audit, AuditRecord, SessionRecord

log = structlog.get_logger("nexflow.memory.paging")

MAX_FACTS = 5  # facts flushed per page, at most

SUMMARIZE_PROMPT = (
    "Context paging: part of a chat between a user and their assistant is leaving the "
    "assistant's context window. Reply with one JSON object and nothing else: "
    '{"summary": "...", "facts": ["..."]}. summary: at most two sentences on what was '
    "discussed, asked, decided or done, keeping the names and numbers that identify it. "
    "facts: durable facts worth remembering beyond this conversation (the user's "
    "preferences, names, decisions, commitments, settings), each self-contained; [] when "
    "there are none. Write in the language of the conversation."
)


class ModelSource(Protocol):
    """Unbudgeted clients (:class:`~nexflow.llm.resolver.ModelResolver`): tests and benches."""

    async def client_for(self, route: str = "execute") -> LLMClient: ...


class ModelGate(Protocol):
    """The budget gate (:class:`~nexflow.llm.gate.BudgetGate`)."""

    async def client_for(
        self, route: str, *, user_id: str, scope: str = "user", purpose: str = ""
    ) -> LLMClient: ...


class Digest(BaseModel):
    """The summarising model's answer."""

    summary: str = Field(min_length=1)
    facts: list[str] = Field(default_factory=list)


class Outcome(Enum):
    UNAVAILABLE = "unavailable"  # no model, provider down, user at budget: retry later
    UNUSABLE = "unusable"  # the model answered something that is not the JSON asked for


def parse_digest(text: str) -> Digest | None:
    start, end = text.find("{"), text.rfind("}")
    if start < 0 or end <= start:
        return None
    try:
        digest = Digest.model_validate(json.loads(text[start : end + 1]))
    except (ValueError, ValidationError):
        return None
    facts = [clip_text(str(f), 500) for f in digest.facts if str(f).strip()][:MAX_FACTS]
    return Digest(summary=clip_text(digest.summary, MAX_SUMMARY_CHARS), facts=facts)


class Summarizer:
    def __init__(
        self,
        storage: Audit,
        models: ModelGate,
        metrics: Metrics | None = None,
    ) -> None:
        self._storage = storage
        self._models = models
        self._metrics = metrics

    async def summarize(self, session: SessionRecord, transcript: str) -> Digest | Outcome:
        user_id = session.user_id
        request = LLMRequest(
            messages=[
                {"role": "system", "content": SUMMARIZE_PROMPT},
                {"role": "user", "content": transcript},
            ],
            route="summarize",
        )
        started = time.perf_counter()
        try:
            client = await self._models.client_for(
                "summarize", user_id=user_id, purpose="context_page"
            )
            response = await client.complete(request)
        except BudgetExhausted:  # nothing was sent; the gate logged it
            return Outcome.UNAVAILABLE
        except LLMError as exc:
            log.warning("context_summary_unavailable", error=exc.message)
            await self._audit(
                [
                    AuditRecord(
                        "llm_call",
                        exc.model or "unknown",
                        "error",
                        user_id,
                        session.id,
                        {"error": exc.message, "route": "summarize", "purpose": "context_page"},
                    )
                ]
            )
            if self._metrics is not None:
                self._metrics.llm_calls.labels(exc.model or "unknown", "error").inc()
            return Outcome.UNAVAILABLE
        usage = response.usage
        outcome = "cache_hit" if response.cached else "ok"
        await self._audit(
            [
                AuditRecord(
                    "llm_call",
                    response.model,
                    outcome,
                    user_id,
                    session.id,
                    {
                        "tokens_in": usage.prompt_tokens,
                        "tokens_out": usage.completion_tokens,
                        "cost_usd": usage.cost_usd,
                        "latency_s": round(time.perf_counter() - started, 4),
                        "route": "summarize",
                        "purpose": "context_page",
                    },
                )
            ]
        )
        if self._metrics is not None:
            m = self._metrics
            m.llm_calls.labels(response.model, outcome).inc()
            m.llm_tokens.labels(response.model, "in").inc(usage.prompt_tokens)
            m.llm_tokens.labels(response.model, "out").inc(usage.completion_tokens)
            m.llm_cost.labels(response.model).inc(usage.cost_usd)
        digest = parse_digest(response.content)
        if digest is None:
            log.warning("context_summary_unusable", answer=response.content[:200])
            return Outcome.UNUSABLE
        return digest

    async def _audit(self, records: list[AuditRecord]) -> None:
        await self._storage.audit(records)
