"""Context paging through the real gateway: a tiny budget, the fake LLM as the model.

The fake LLM's ``brain`` sees every prompt: summarising requests (the pager's) are told
apart by their system prompt, chat requests by the rest.
"""

import json
import re
import sqlite3
from pathlib import Path
from typing import Any

from nexflow.memory.summarizer import SUMMARIZE_PROMPT
from nexflow.testing.fake_llm import Reply
from nexflow.testing.harness import GatewayHarness

TINY = {
    "NEXFLOW_MEMORY__CONTEXT_BUDGET_TOKENS": "300",
    "NEXFLOW_LLM__RETRY__ATTEMPTS": "1",
    "NEXFLOW_LLM__BREAKER__FAILURES": "100",
}
FIRST = "Remember this: my boat is named Seagull."
FILLERS = [
    f"Filler {i}: the tomatoes in the valley garden need watering on day {i} of the heatwave."
    for i in range(10)
]


def is_summary(body: dict[str, Any]) -> bool:
    return body["messages"][0]["content"] == SUMMARIZE_PROMPT


def chat_brain(body: dict[str, Any]) -> Reply:
    messages = body["messages"]
    if is_summary(body):  # a summary that does not give the boat's name away
        return Reply(text=json.dumps({"summary": "An earlier exchange.", "facts": []}))
    last = str(messages[-1]["content"])
    if messages[-1]["role"] == "tool":
        return Reply(text="Here it is.")
    if last == "show me page 1 in full":  # scripted here: paging may call the model first
        return Reply(tool_calls=(("context_page_get", {"id": 1}),))
    if last.startswith("What is my boat called"):
        everything = "\n".join(str(m.get("content") or "") for m in messages)
        found = re.search(r"boat is named (\w+)", everything)
        return Reply(text=f"Your boat is named {found.group(1)}." if found else "No idea.")
    return Reply(text=f"Noted: {last}")


def rows(db: Path, sql: str, *args: object) -> list[tuple[Any, ...]]:
    with sqlite3.connect(db) as conn:
        return conn.execute(sql, args).fetchall()


def chat_requests(gw: GatewayHarness) -> list[dict[str, Any]]:
    return [r for r in gw.llm.requests if not is_summary(r)]


async def test_the_first_message_is_paged_back_in_past_a_tiny_budget(tmp_path: Path) -> None:
    home = tmp_path / "home"
    async with GatewayHarness(home, env=TINY, client="openai") as gw:
        assert gw.app is not None
        gw.llm.brain = chat_brain
        first = await gw.chat(FIRST)
        session = first["session"]
        for text in FILLERS:
            await gw.chat(text, session=session)
        early_tools = {t["function"]["name"] for t in chat_requests(gw)[0].get("tools") or []}
        answer = await gw.chat("What is my boat called?", session=session)
        assert answer["reply"] == "Your boat is named Seagull."

        prompt = chat_requests(gw)[-1]
        system = prompt["messages"][0]["content"]
        later = [str(m.get("content")) for m in prompt["messages"][1:]]
        # The first exchange is no longer among the recent turns: it came back as a page.
        assert not any("Seagull" in text for text in later)
        restored = system.split("Restored in full because they relate to the new message:")[1]
        assert FIRST in restored
        assert "An earlier exchange." in system  # summaries of the other pages
        tools = {t["function"]["name"] for t in prompt.get("tools") or []}
        assert {"context_pages", "context_page_get"} <= tools
        assert not {"context_pages", "context_page_get"} & early_tools

        paged = await gw.chat("/paged", session=session)
        assert "page 1 ·" in paged["reply"] and "An earlier exchange." in paged["reply"]

        got = await gw.chat("show me page 1 in full", session=session)
        assert got["tool_calls"][0]["ok"] is True
        assert f"user: {FIRST}" in got["tool_calls"][0]["result"]
        assert f"assistant: Noted: {FIRST}" in got["tool_calls"][0]["result"]

        database, memory_db = gw.app.config.database_path, gw.app.config.memory_path

    # Nothing was deleted: every message of every turn is still in the gateway's database.
    turns = 1 + len(FILLERS) + 1 + 1 + 1
    stored = rows(database, "SELECT role, content FROM messages WHERE session_id=?", session)
    assert len([r for r in stored if r[0] == "user"]) == turns
    assert (("user", FIRST) in stored) and (("assistant", f"Noted: {FIRST}") in stored)
    assert len(stored) == 2 * turns + 2  # + the tool call and its result
    pages = rows(memory_db, "SELECT first_msg_id, last_msg_id, state FROM pages ORDER BY id")
    assert len(pages) >= 3 and all(state == "out" for *_, state in pages)
    ids = [r[0] for r in rows(database, "SELECT id FROM messages ORDER BY id")]
    paged_ids = [i for first_id, last_id, _ in pages for i in ids if first_id <= i <= last_id]
    assert paged_ids == ids[: len(paged_ids)]  # contiguous, oldest first, no gaps


async def test_paging_with_the_model_down_falls_back_and_flushes_later(tmp_path: Path) -> None:
    def summariser_down(body: dict[str, Any]) -> Reply:
        if is_summary(body):
            return Reply(status=500)
        return Reply(text=f"Noted: {body['messages'][-1]['content']}")

    def summariser_up(body: dict[str, Any]) -> Reply:
        if is_summary(body):
            facts = ["The user's boat is named Seagull"] if "Seagull" in str(body) else []
            return Reply(text=json.dumps({"summary": "Boat talk.", "facts": facts}))
        return Reply(text=f"Noted: {body['messages'][-1]['content']}")

    home = tmp_path / "home"
    async with GatewayHarness(home, env=TINY, client="openai") as gw:
        assert gw.app is not None
        gw.llm.brain = summariser_down
        session = (await gw.chat(FIRST))["session"]
        for text in FILLERS[:6]:
            await gw.chat(text, session=session)
        assert any(is_summary(r) for r in gw.llm.requests)  # it was asked, and failed
        memory_db, database = gw.app.config.memory_path, gw.app.config.database_path
        pages = rows(memory_db, "SELECT id, summary, summary_by, flushed FROM pages ORDER BY id")
        assert len(pages) >= 2
        assert all(by == "fallback" and flushed == 0 for _, _, by, flushed in pages)
        assert FIRST in pages[0][1]  # the deterministic summary quotes the user
        assert len(rows(database, "SELECT id FROM messages")) == 2 * 7

        gw.llm.brain = summariser_up  # the model is back: the next turn's upkeep flushes
        await gw.chat("One more thing about the garden.", session=session)

    page_one = rows(memory_db, "SELECT summary, summary_by, flushed FROM pages WHERE id=1")[0]
    assert page_one == ("Boat talk.", "llm", 1)
    notes = "".join(p.read_text() for p in (home / "workspace" / "memory").glob("*/*.md"))
    assert "The user's boat is named Seagull #page-1" in notes
    assert len(rows(database, "SELECT id FROM messages")) == 2 * 8
