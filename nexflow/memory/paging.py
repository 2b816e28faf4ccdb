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

A turn under the budget costs no planning: the pager remembers, per session (a bounded LRU),
the cut, whether pages exist, the estimated tokens after the cut and the last message id it
counted; after a turn it reads only the newer messages and adds their tokens. Unknown
sessions (after a restart, or evicted) are read in full once. Pending flushes and vectors
are only looked for where this process knows (or, after a restart, cannot rule out) one.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

import structlog

from nexflow import i18n
from nexflow.config.model import MemoryConfig
from nexflow.memory.errors import MemoryStoreError
from nexflow.memory.pages import NewPage, Page, PageIndex, SummaryBy
from nexflow.memory.service import MemoryService
from nexflow.memory.store import keyword_terms
from nexflow.memory.summarizer import BudgetGate, Digest, ModelSource, Outcome, Summarizer
from nexflow.memory.transcript import (
    estimate_tokens,
    exchanges,
    fallback_summary,
    message_tokens,
    plan_pages,
    render,
)
from nexflow.observability.metrics import Metrics
from nexflow.storage.base import MessageRecord, SessionRecord, Storage

log = structlog.get_logger("nexflow.memory.paging")

MAX_LOAD = 10_000  # unpaged messages read per turn, at most
MAX_FLUSH_ATTEMPTS = 3  # answers the model gave that were unusable, before giving up
LLM_PAGES_PER_RUN = 4  # model calls one paging run may make; the rest get fallback summaries
EXCERPT_CHARS = 1_500  # per message in the summariser's input and the keyword index
EMBED_CHARS = 2_000
PAGE_TOOLS = frozenset({"context_pages", "context_page_get"})
KNOWN_SESSIONS = 1_024  # sessions whose token estimate is kept in memory (LRU)
KNOWN_CLEAN = 10_000  # users / sessions remembered as having nothing to flush / embed


@dataclass(slots=True)
class _Estimate:
    """What the pager last counted of a session: messages ``cut < id <= last_id`` are not
    paged out and take ``tokens`` (exactly :func:`message_tokens` summed, not a guess)."""

    cut: int
    pages: bool
    tokens: int
    last_id: int


class _Clean:
    """Keys known to have nothing pending. A key not in it is asked about (after a restart,
    once); :meth:`dirty` bumps an epoch so an answer computed before it is not trusted."""

    def __init__(self) -> None:
        self._keys: set[str] = set()
        self.epoch = 0

    def __contains__(self, key: str) -> bool:
        return key in self._keys

    def dirty(self, key: str) -> None:
        self._keys.discard(key)
        self.epoch += 1

    def clean(self, key: str, since: int) -> None:
        if self.epoch != since:  # something went pending meanwhile: ask again next time
            return
        if len(self._keys) >= KNOWN_CLEAN:
            self._keys.clear()  # forgetting only costs a query
        self._keys.add(key)


@dataclass(frozen=True, slots=True)
class PagedHistory:
    """A turn's view of its session: ``recent`` messages (not paged out) and ``block``, the
    prompt section about paged-out pages ("" when there are none)."""

    recent: list[MessageRecord]
    block: str = ""
    pages: int = 0
    restored: tuple[int, ...] = ()


class ContextPager:
    def __init__(
        self,
        storage: Storage,
        memory: MemoryService,
        models: ModelSource,
        config: MemoryConfig,
        *,
        budgets: BudgetGate | None = None,
        metrics: Metrics | None = None,
    ) -> None:
        self._storage = storage
        self._memory = memory
        self._summarizer = Summarizer(storage, models, budgets, metrics)
        self._budget = config.context_budget_tokens
        self._page_in_max = config.page_in_max
        self._min_similarity = config.page_in_min_similarity
        self._embed_min_chars = config.page_in_embed_min_chars
        self._known: OrderedDict[str, _Estimate] = OrderedDict()
        self._flushed = _Clean()  # user ids without a page to flush
        self._embedded = _Clean()  # session ids without a page to embed

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
        recent = await self._storage.session_messages(session.id, cut, None, MAX_LOAD)
        try:
            used = sum(message_tokens(m) for m in recent)
            if used > self.recent_max:
                kept = await self._page_out(session, recent)
                if len(kept) != len(recent):
                    pages = await self._memory.run_in_db(self._pages.of_session, session.id)
                    recent, used = kept, sum(message_tokens(m) for m in kept)
            self._remember(session.id, _cut(pages), bool(pages), recent, used)
            if not pages:
                return PagedHistory(recent)
            summary_room = self._budget // 5
            restore_room = self._budget - used - summary_room
            restored = await self._page_in(session, message, pages, restore_room)
        except Exception:  # paging never fails a turn: it goes on with the unpaged history
            log.exception("context_paging_failed", session_id=session.id)
            self._known.pop(session.id, None)
            return PagedHistory(recent)
        block = self._block(pages, restored, summary_room)
        return PagedHistory(recent, block, len(pages), tuple(p.id for p, _ in restored))

    async def after_turn(self, session: SessionRecord) -> None:
        """Upkeep once the reply is out: page out, retry a missed flush, embed new pages."""
        try:
            if not await self._within_budget(session.id):
                known = self._known.pop(session.id, None)
                if known is not None:
                    cut = known.cut
                else:
                    cut = await self._memory.run_in_db(self._pages.cut, session.id)
                recent = await self._storage.session_messages(session.id, cut, None, MAX_LOAD)
                kept = await self._page_out(session, recent)
                if len(kept) < len(recent):  # kept is a suffix of recent
                    cut = recent[len(recent) - len(kept) - 1].id
                tokens = sum(message_tokens(m) for m in kept)
                self._remember(session.id, cut, cut > 0, kept, tokens)
            await self._retry_flush(session.user_id)
            await self._embed_pages(session.id)
        except Exception:  # upkeep must never break the lane; the next turn retries
            log.exception("context_paging_failed", session_id=session.id)
            self._known.pop(session.id, None)

    # -- the estimate --------------------------------------------------------------------

    async def _within_budget(self, session_id: str) -> bool:
        """Whether the session is known to need no page-out: its estimate plus the messages
        written since it was made stay within ``recent_max``. False when not known."""
        known = self._known.get(session_id)
        if known is None:
            return False
        new = await self._storage.session_messages(session_id, known.last_id, None, MAX_LOAD)
        tokens = known.tokens + sum(message_tokens(m) for m in new)
        if tokens > self.recent_max or len(new) >= MAX_LOAD:
            return False
        known.tokens = tokens
        known.last_id = new[-1].id if new else known.last_id
        self._known.move_to_end(session_id)
        return True

    def _remember(
        self, session_id: str, cut: int, pages: bool, recent: list[MessageRecord], tokens: int
    ) -> None:
        self._known.pop(session_id, None)
        if len(recent) >= MAX_LOAD:  # the read was cut short: the estimate would be low
            return
        last_id = recent[-1].id if recent else cut
        self._known[session_id] = _Estimate(cut, pages, tokens, last_id)
        if len(self._known) > KNOWN_SESSIONS:
            self._known.popitem(last=False)

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
            flushed = await self._flush(user_id, page.id, facts)
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

    async def _flush(self, user_id: str, page_id: int, facts: Sequence[str]) -> bool:
        for fact in facts:
            try:
                await self._memory.save(user_id, fact, [f"page-{page_id}"])
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
                flushed = await self._flush(user_id, page.id, digest.facts)
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
        vectors = await self._memory.embed([text[:EMBED_CHARS] for _, text in pending])
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

    def _block(
        self,
        pages: list[Page],
        restored: list[tuple[Page, list[MessageRecord]]],
        room: int,
    ) -> str:
        shown = {p.id for p, _ in restored}
        lines = [
            "## Earlier in this conversation",
            f"{len(pages)} older part(s) of this conversation are paged out to memory (nothing "
            "is deleted); context_pages lists them, context_page_get restores one in full.",
        ]
        room -= sum(estimate_tokens(line) for line in lines)
        summaries: list[str] = []
        for page in reversed(pages):  # the newest pages first, while they fit
            if page.id in shown:
                continue
            line = f"- page {page.id} ({_when(page.started_at)}): {page.summary}"
            cost = estimate_tokens(line) + 1
            if cost > room:
                break
            summaries.append(line)
            room -= cost
        hidden = len(pages) - len(shown) - len(summaries)
        if hidden:
            lines.append(f"- ({hidden} earlier page(s) not summarised here)")
        lines += reversed(summaries)
        if restored:
            lines.append("Restored in full because they relate to the new message:")
            for page, messages in restored:
                lines.append(f"### page {page.id} ({_when(page.started_at)})")
                lines.append(render(messages))
        return "\n".join(lines)

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
        pages = await self.pages(session_id)
        if not pages:
            return i18n.t(lang, "paged_none")
        lines = [i18n.t(lang, "paged_header", count=len(pages), first=pages[0].id)]
        for page in pages[-30:]:
            flag = "" if page.flushed else i18n.t(lang, "paged_unflushed")
            lines.append(
                i18n.t(
                    lang,
                    "paged_line",
                    id=page.id,
                    when=_when(page.started_at),
                    messages=page.messages,
                    flag=flag,
                    summary=page.summary,
                )
            )
        return "\n".join(lines)


def _cut(pages: Sequence[Page]) -> int:
    """The last paged-out message id (0: none), as :meth:`PageIndex.cut` reads it."""
    return max((p.last_msg_id for p in pages), default=0)


def _when(ts: float) -> str:
    return datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%d %H:%M")
