"""The pager's kept window gives the same turns as reading everything every turn.

Two worlds get the same message stream: in one a long-lived pager keeps each session's
unpaged window and reads only what is new; in the other every call is made by a fresh
pager, which reads the whole window from the database. Both page out past a small budget;
the prepared history, the prompt block and the pages must be the same every turn.
"""

import json
import re
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from nexflow.bus.events import InboundEvent, TextOut
from nexflow.config.model import LLMConfig, MemoryConfig, ModelProfile
from nexflow.llm.litellm_client import LiteLLMLoader
from nexflow.llm.resolver import ModelResolver
from nexflow.memory import MemoryService
from nexflow.memory.embedder import OpenAICompatEmbedder
from nexflow.memory.paging import ContextPager, PagedHistory
from nexflow.memory.summarizer import SUMMARIZE_PROMPT
from nexflow.memory.transcript import message_tokens
from nexflow.storage import SQLStorage
from nexflow.storage.base import MessageRecord, NewMessage, SessionRecord
from nexflow.testing.fake_llm import FakeLLMServer, Reply
from tests.memory.conftest import IndexUrl

TURNS = 60
CONFIG = MemoryConfig(context_budget_tokens=600, page_in_min_similarity=0.05)
TOPICS = ["herons at dawn", "tomatoes in a heatwave", "the boat Seagull", "compiler flags"]


def brain(body: dict[str, Any]) -> Reply:
    """Summaries that differ per page (the page's first words), deterministic."""
    assert body["messages"][0]["content"] == SUMMARIZE_PROMPT
    transcript = str(body["messages"][1]["content"])
    fact = [f"Mentioned {transcript[6:40]}"] if "Seagull" in transcript else []
    return Reply(text=json.dumps({"summary": f"About {transcript[:60]}", "facts": fact}))


@pytest.fixture
async def resolver(fake_llm: FakeLLMServer) -> AsyncIterator[ModelResolver]:
    fake_llm.brain = brain
    profile = ModelProfile(model="openai/f", api_base=fake_llm.base_url, api_key="k")
    models = ModelResolver(LLMConfig(models={"default": profile}, stream=False), LiteLLMLoader())
    yield models
    await models.close()


class World:
    """A database, a memory.db and the sessions of one side of the comparison."""

    def __init__(
        self, root: Path, fake_llm: FakeLLMServer, models: ModelResolver, index_url: str | None
    ) -> None:
        root.mkdir()
        self.storage = SQLStorage(root / "nexflow.db")
        embedder = OpenAICompatEmbedder(fake_llm.base_url, "openai/fake-embedding", "k")
        self.memory = MemoryService(root / "memory.db", root / "ws", embedder, index_url=index_url)
        self.models = models
        self.sessions: dict[str, SessionRecord] = {}
        self.rows_read = 0

    async def start(self) -> None:
        await self.storage.open()
        await self.memory.start()
        read = self.storage.session_messages

        async def counted(
            session_id: str, after_id: int, until_id: int | None, limit: int
        ) -> list[MessageRecord]:
            rows = await read(session_id, after_id, until_id, limit)
            if until_id is None:  # the unpaged window (a restored page has an end)
                self.rows_read += len(rows)
            return rows

        self.storage.session_messages = counted  # type: ignore[method-assign]
        user = await self.storage.create_user("ada", "owner", "web", "ada")
        for chat in ("main", "other"):
            self.sessions[chat] = await self.storage.ensure_session(None, user, "web", chat)

    async def stop(self) -> None:
        await self.memory.stop()
        await self.storage.close()

    def pager(self, known_sessions: int = 256) -> ContextPager:
        return ContextPager(
            self.storage, self.memory, self.models, CONFIG, known_sessions=known_sessions
        )

    async def exchange(self, chat: str, text: str, reply: str, tool: bool) -> None:
        session = self.sessions[chat]
        event = InboundEvent(
            channel="web",
            chat_id=chat,
            sender_id="ada",
            message=text,
            user_id=session.user_id,
            session_id=session.id,
        )
        inbox_id, _ = await self.storage.accept(event)
        messages = [NewMessage("user", text)]
        if tool:
            call = {
                "id": "t1",
                "type": "function",
                "function": {"name": "get_time", "arguments": "{}"},
            }
            messages += [
                NewMessage("assistant", "", tool_calls=[call]),
                NewMessage("tool", "12:00 UTC", tool_call_id="t1", name="get_time"),
            ]
        messages.append(NewMessage("assistant", reply))
        out = TextOut(channel="web", chat_id=chat, session_id=session.id, text=reply)
        await self.storage.complete(inbox_id, messages, out)


def seen(history: PagedHistory) -> tuple[Any, ...]:
    """What a turn sends the model, with page times (wall clock) left out."""
    recent = [
        (m.id, m.role, m.content, m.tool_calls, m.tool_call_id, m.name) for m in history.recent
    ]
    block = re.sub(r"\(\d{4}-\d\d-\d\d \d\d:\d\d\)", "(time)", history.block)
    return recent, block, history.pages, history.restored


def turn_text(n: int) -> tuple[str, str, bool]:
    topic = TOPICS[n % len(TOPICS)]
    return (
        f"Turn {n}: tell me about {topic}" + " please" * (n % 5),
        f"Reply {n} on {topic}: " + "details " * (n * 7 % 40),
        n % 5 == 2,
    )


async def test_a_kept_window_prepares_what_a_full_read_does_every_turn(
    tmp_path: Path, fake_llm: FakeLLMServer, resolver: ModelResolver, new_index_url: IndexUrl
) -> None:
    # On each memory index engine (the pages live in it).
    kept = World(tmp_path / "kept", fake_llm, resolver, new_index_url())
    fresh = World(tmp_path / "fresh", fake_llm, resolver, new_index_url())
    await kept.start()
    await fresh.start()
    try:
        pager = kept.pager(known_sessions=1)
        paged_before_turn = 0  # page-outs by prepare (the safety net), not after_turn
        for n in range(TURNS):
            # "other" takes a turn now and then: with room for one window, it evicts main's.
            chat = "other" if n % 11 == 10 else "main"
            if n == 30:
                pager = kept.pager(known_sessions=1)  # a restart: the first turn reads once
            text, reply, tool = turn_text(n)
            before = len(await pager.pages(kept.sessions[chat].id))
            ours = await pager.prepare(kept.sessions[chat], text)
            theirs = await fresh.pager().prepare(fresh.sessions[chat], text)
            assert seen(ours) == seen(theirs), f"turn {n}"
            paged_before_turn += ours.pages > before
            assert sum(message_tokens(m) for m in ours.recent) <= pager.recent_max
            for m in ours.recent:  # a client that edits the request in place
                for call in m.tool_calls or []:
                    call["function"]["name"] = "edited"
            await kept.exchange(chat, text, reply, tool)
            await fresh.exchange(chat, text, reply, tool)
            if n % 7 == 3:  # no upkeep (as after a command): the next prepare pages out
                continue
            await pager.after_turn(kept.sessions[chat])
            await fresh.pager().after_turn(fresh.sessions[chat])
            ours_pages = await pager.pages(kept.sessions[chat].id)
            theirs_pages = await fresh.pager().pages(fresh.sessions[chat].id)
            assert [(p.first_msg_id, p.last_msg_id, p.summary, p.facts) for p in ours_pages] == [
                (p.first_msg_id, p.last_msg_id, p.summary, p.facts) for p in theirs_pages
            ], f"turn {n}"
        main = await pager.pages(kept.sessions["main"].id)
        assert len(main) >= 5 and paged_before_turn >= 2  # paging really happened, both ways
        # The kept window read a fraction of what reading everything every turn did.
        assert kept.rows_read * 3 < fresh.rows_read, (kept.rows_read, fresh.rows_read)
    finally:
        await kept.stop()
        await fresh.stop()
