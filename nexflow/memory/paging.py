"""Context paging (seed 002 §5): a session's history in the prompt stays within a budget.

When the history not yet paged out takes more than half of ``memory.context_budget_tokens``,
its oldest exchanges (a user message and everything up to the next one, so a tool call is
never separated from its result) are grouped into pages of about an eighth of the budget.
For each page, before its messages leave the prompt, the ``summarize`` route is asked for a
summary and the durable facts in it; the facts are saved to long-term memory (tag
``#page-<id>``). Then the page is paged out: a row in memory.db names its message ids
(the messages stay in the gateway's database, nothing is deleted), with the summary, an
FTS row and a vector. When the model is down, at its budget or answers nonsense, a
deterministic summary is used, the page is still paged out, marked "not flushed", and the
flush is retried after a later turn.

Each turn's prompt carries the recent turns, compact summaries of the paged-out pages,
and the pages most relevant to the new message restored in full (keyword + vector search,
within the budget). See docs/memory.md.

A turn under the budget costs no planning and no full read: the pager keeps, per session,
the cut and the unpaged window with its estimated tokens
(:mod:`~nexflow.memory.page_estimates`); before and after a turn it reads only the newer
messages, appends them and adds their tokens. Pending flushes and vectors are only looked
for where this process knows (or, after a restart, cannot rule out) one
(:mod:`~nexflow.memory.known_clean`). What the prompt and ``/paged`` show of the pages is
rendered by :mod:`~nexflow.memory.page_view`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Any, Protocol

import structlog

from nexflow.config.model import MemoryConfig
from nexflow.llm.gate import Unbudgeted
from nexflow.memory import page_view
from nexflow.memory.errors import MemoryStoreError
from nexflow.memory.keywords import keyword_terms
from nexflow.memory.known_clean import KnownClean
from nexflow.memory.page_estimates import KNOWN_SESSIONS, SessionEstimates
from nexflow.memory.pages import NewPage, Page, PageIndex, SummaryBy
from nexflow.memory.service import MemoryService
from nexflow.memory.summarizer import (
    Digest,
    ModelGate,
    ModelSource,
    Outcome,
    Summarizer,
)
from nexflow.memory.transcript import (
    exchanges,
    fallback_summary,
    message_tokens,
    plan_pages,
    render,
)
from nexflow.observability.metrics import Metrics
from nexflow.storage.base import Audit, MessageRecord, SessionRecord, Sessions
from nexflow.trust import untrusted_sources

log = structlog.get_logger("nexflow.memory.paging")

MAX_LOAD = 10_000  # unpaged messages read per turn, at most
MAX_FLUSH_ATTEMPTS = 3  # answers the model gave that were unusable, before giving up
LLM_PAGES_PER_RUN = 4  # model calls one paging run may make; the rest get fallback summaries
EXCERPT_CHARS = 1_500  # per message in the summariser's input and the keyword index
EMBED_CHARS = 2_000
PAGE_TOOLS = frozenset({"context_pages", "context_page_get"})


@dataclass(frozen=True, slots=True)
class PagedHistory:
    """A turn's view of its session: ``recent`` messages (not paged out) and ``block``, the
    prompt section about paged-out pages ("" when there are none). ``recent`` is the turn's
    own list; its records are shared with the pager's window except for ``tool_calls``,
    which are copied."""

    recent: list[MessageRecord]
    block: str = ""
    pages: int = 0
    restored: tuple[int, ...] = ()


class PagerStorage(Sessions, Audit, Protocol):
    """What the pager reads (a session's messages) and its summariser writes (audit)."""


class ContextPager:
    def __init__(
        self,
        storage: PagerStorage,
        memory: MemoryService,
        models: ModelSource,
        config: MemoryConfig,
        *,
        gate: ModelGate | None = None,
        metrics: Metrics | None = None,
        known_sessions: int = KNOWN_SESSIONS,
    ) -> None:
        self._storage = storage
        self._memory = memory
        # The summaries' model calls go through the budget gate; ``models`` alone (tests,
        # benchmarks) makes them unbudgeted.
        self._summarizer = Summarizer(storage, gate or Unbudgeted(models), metrics)
        self._budget = config.context_budget_tokens
        self._page_in_max = config.page_in_max
        self._min_similarity = config.page_in_min_similarity
        self._embed_min_chars = config.page_in_embed_min_chars
        self._known = SessionEstimates(MAX_LOAD, known_sessions)  # windows kept (LRU)
        self._flushed = KnownClean()  # user ids without a page to flush
        self._embedded = KnownClean()  # session ids without a page to embed

    @property
    def recent_max(self) -> int:
        return self._budget // 2

    @property
    def page_tokens(self) -> int:
        return max(1, self._budget // 8)

    @property
    def _pages(self) -> PageIndex:
        return self._memory.index.pages

    # -- the turn ------------------------------------------------------------------------

    async def prepare(self, session: SessionRecord, message: str) -> PagedHistory:
        """The history for a turn, paging out first if it is over the budget."""
        known = self._known.get(session.id)
        pages: list[Page] = []
        if known is not None and not known.pages:
            cut = known.cut  # no pages: nothing to read from memory.db
        else:
            pages = await self._memory.run_in_db(self._pages.of_session, session.id)
            cut = _cut(pages)
        recent, used = await self._window(session.id, cut)
        try:
            if used > self.recent_max:
                kept = await self._page_out(session, recent)
                if len(kept) != len(recent):
                    pages = await self._memory.run_in_db(self._pages.of_session, session.id)
                    recent, used = kept, sum(message_tokens(m) for m in kept)
            self._known.remember(session.id, _cut(pages), bool(pages), recent, used)
            if not pages:
                return PagedHistory(_handed_out(recent))
            summary_room = self._budget // 5
            restore_room = self._budget - used - summary_room
            restored = await self._page_in(session, message, pages, restore_room)
        except Exception:  # paging never fails a turn: it goes on with the unpaged history
            log.exception("context_paging_failed", session_id=session.id)
            self._known.forget(session.id)
            return PagedHistory(_handed_out(recent))
        block = page_view.prompt_block(pages, restored, summary_room)
        return PagedHistory(
            _handed_out(recent), block, len(pages), tuple(p.id for p, _ in restored)
        )

    async def after_turn(self, session: SessionRecord) -> None:
        """Upkeep once the reply is out: page out, retry a missed flush, embed new pages."""
        try:
            known = self._known.get(session.id)
            if known is not None:
                cut = known.cut
            else:
                cut = await self._memory.run_in_db(self._pages.cut, session.id)
            recent, used = await self._window(session.id, cut)
            if used > self.recent_max:
                kept = await self._page_out(session, recent)
                if len(kept) < len(recent):  # kept is a suffix of recent
                    cut = recent[len(recent) - len(kept) - 1].id
                    recent, used = kept, sum(message_tokens(m) for m in kept)
            self._known.remember(session.id, cut, cut > 0, recent, used)
            await self._retry_flush(session.user_id)
            await self._embed_pages(session.id)
        except Exception:  # upkeep must never break the lane; the next turn retries
            log.exception("context_paging_failed", session_id=session.id)
            self._known.forget(session.id)

    async def _window(self, session_id: str, cut: int) -> tuple[list[MessageRecord], int]:
        """The session's messages after ``cut`` and their estimated tokens.

        A session known with this cut reads only the messages after its ``last_id`` and
        adds them to the window it keeps; otherwise (not known, evicted, another cut, or
        a window as long as a read may be) everything after the cut is read and counted.
        The list returned is the pager's window (or becomes it): it is not handed out.
        """
        known = self._known.get(session_id)
        if known is not None and known.cut == cut:
            after = known.last_id
            new = await self._storage.session_messages(session_id, after, None, MAX_LOAD)
            caught = self._known.catch_up(session_id, after, new)
            if caught is not None:
                return caught.window, caught.tokens
        elif known is not None:
            self._known.forget(session_id)
        recent = await self._storage.session_messages(session_id, cut, None, MAX_LOAD)
        return recent, sum(message_tokens(m) for m in recent)

    # -- page out ------------------------------------------------------------------------

    async def _page_out(
        self, session: SessionRecord, recent: list[MessageRecord]
    ) -> list[MessageRecord]:
        plan = plan_pages(exchanges(recent), self.recent_max, self.page_tokens)
        if not plan:
            return recent
        for number, messages in enumerate(plan):
            await self._page_out_one(session, messages, use_model=number < LLM_PAGES_PER_RUN)
        await self._embed_pages(session.id)
        last = plan[-1][-1].id
        return [m for m in recent if m.id > last]

    async def _page_out_one(
        self, session: SessionRecord, messages: list[MessageRecord], use_model: bool
    ) -> Page:
        user_id = session.user_id
        fallback = fallback_summary(messages)
        page = await self._memory.run_in_db(
            self._pages.begin,
            NewPage(
                user_id,
                session.id,
                messages[0].id,
                messages[-1].id,
                len(messages),
                sum(message_tokens(m) for m in messages),
                fallback,
                messages[0].created_at,
                messages[-1].created_at,
            ),
        )
        body = render(messages, clip=EXCERPT_CHARS)
        # The flush: the page's facts go to long-term memory before it leaves the prompt.
        digest = (
            await self._summarizer.summarize(session, body) if use_model else Outcome.UNAVAILABLE
        )
        summary: str = fallback
        summary_by: SummaryBy = "fallback"
        facts: list[str] = []
        flushed = False
        if isinstance(digest, Digest):
            summary, summary_by, facts = digest.summary, "llm", digest.facts
            flushed = await self._flush(user_id, page.id, facts, _taint(messages))
        if not flushed:
            self._flushed.dirty(user_id)
        self._embedded.dirty(session.id)
        done = await self._memory.run_in_db(
            self._pages.finish,
            page.id,
            summary,
            summary_by,
            facts,
            flushed,
            digest is Outcome.UNUSABLE,
            body,
        )
        log.info(
            "context_paged_out",
            session_id=session.id,
            page=done.id,
            messages=done.messages,
            tokens=done.tokens,
            summary_by=summary_by,
            flushed=flushed,
            facts=len(facts),
        )
        return done

    async def _flush(
        self, user_id: str, page_id: int, facts: Sequence[str], tainted: tuple[str, ...] = ()
    ) -> bool:
        """Facts of a page go to memory; a page that held untrusted output taints them."""
        for fact in facts:
            try:
                await self._memory.save(user_id, fact, [f"page-{page_id}"], tainted)
            except MemoryStoreError as exc:
                log.warning("context_flush_failed", page=page_id, error=exc.message)
                return False
        return True

    async def _retry_flush(self, user_id: str) -> None:
        """Flush one page paged out while the summarising model was not available."""
        if user_id in self._flushed:
            return
        since = self._flushed.epoch
        pages = await self._memory.run_in_db(self._pages.to_flush, user_id, MAX_FLUSH_ATTEMPTS, 1)
        if not pages:
            self._flushed.clean(user_id, since)
        for page in pages:
            session = await self._storage.get_session(page.session_id)
            if session is None:
                continue
            messages = await self._messages_of(page)
            digest = await self._summarizer.summarize(session, render(messages, clip=EXCERPT_CHARS))
            if digest is Outcome.UNAVAILABLE:
                return
            if isinstance(digest, Digest):
                flushed = await self._flush(user_id, page.id, digest.facts, _taint(messages))
                self._embedded.dirty(page.session_id)  # a new summary: its vector is dropped
                await self._memory.run_in_db(
                    self._pages.reflushed, page.id, digest.summary, digest.facts, flushed, False
                )
                log.info("context_page_flushed", page=page.id, facts=len(digest.facts))
            else:
                await self._memory.run_in_db(self._pages.reflushed, page.id, "", [], False, True)

    async def _embed_pages(self, session_id: str) -> None:
        model = self._memory.embedder_name
        if model is None or session_id in self._embedded:
            return
        since = self._embedded.epoch
        pending = await self._memory.run_in_db(self._pages.unembedded, session_id, model, 16)
        if not pending:
            self._embedded.clean(session_id, since)
            return
        chars = self._memory.page_embed_chars(EMBED_CHARS)
        vectors = await self._memory.embed([text[:chars] for _, text in pending])
        if vectors is None:
            return
        rows = [(page_id, vector) for (page_id, _), vector in zip(pending, vectors, strict=True)]
        await self._memory.run_in_db(self._pages.store_vectors, model, rows)
        # Asked again next time: 16 at most per call, there may be more.

    # -- page in -------------------------------------------------------------------------

    async def _page_in(
        self, session: SessionRecord, message: str, pages: list[Page], room: int
    ) -> list[tuple[Page, list[MessageRecord]]]:
        if self._page_in_max == 0 or room <= 0:
            return []
        model = self._memory.embedder_name
        vector = None
        # A short message ("hi", "ok", "thanks") has no topic to match by meaning: keyword only.
        if model is not None and len(message.strip()) >= self._embed_min_chars:
            vectors = await self._memory.embed([message])
            vector = vectors[0] if vectors else None
        ranked = await self._memory.run_in_db(
            self._pages.search,
            session.id,
            keyword_terms(message),
            vector,
            model,
            self._min_similarity,
            self._page_in_max * 3,
        )
        by_id = {p.id: p for p in pages}
        chosen: list[tuple[Page, list[MessageRecord]]] = []
        for page_id in ranked:
            page = by_id.get(page_id)
            if page is None or page.tokens > room:
                continue
            chosen.append((page, await self._messages_of(page)))
            room -= page.tokens
            if len(chosen) >= self._page_in_max:
                break
        chosen.sort(key=lambda pm: pm[0].first_msg_id)
        if chosen:
            await self._memory.run_in_db(self._pages.mark_restored, [p.id for p, _ in chosen])
        return chosen

    async def _messages_of(self, page: Page) -> list[MessageRecord]:
        return await self._storage.session_messages(
            page.session_id, page.first_msg_id - 1, page.last_msg_id, max(page.messages, 1)
        )

    # -- asking what was paged out -----------------------------------------------------------

    async def pages(self, session_id: str) -> list[Page]:
        return await self._memory.run_in_db(self._pages.of_session, session_id)

    async def page(self, user_id: str, page_id: int) -> tuple[Page, str] | None:
        """One of the user's pages and its messages in full, as a transcript."""
        page = await self._memory.run_in_db(self._pages.get, page_id, user_id)
        if page is None or page.state != "out":
            return None
        return page, render(await self._messages_of(page))

    async def listing(self, lang: str, session_id: str) -> str:
        """The ``/paged`` reply."""
        return page_view.listing(lang, await self.pages(session_id))


def _handed_out(window: list[MessageRecord]) -> list[MessageRecord]:
    """A turn's copy of the window. The records are frozen, but ``tool_calls`` is a list of
    dicts that goes on to the model client; each turn gets its own, so a client that edits
    the request in place cannot change what the next turn sends."""
    return [
        m if not m.tool_calls else replace(m, tool_calls=_json_copy(m.tool_calls)) for m in window
    ]


def _json_copy(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _json_copy(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_json_copy(v) for v in value]
    return value


def _cut(pages: Sequence[Page]) -> int:
    """The last paged-out message id (0: none), as :meth:`PageIndex.cut` reads it."""
    return max((p.last_msg_id for p in pages), default=0)


def _taint(messages: Sequence[MessageRecord]) -> tuple[str, ...]:
    """The untrusted sources of a page's tool messages (docs/trust.md)."""
    return untrusted_sources(m.content for m in messages if m.role == "tool")
