"""memory_save with a flow step's idempotency key: a step that runs again after a crash
(same key) finds its fact in the note and does not append it twice; the key mark is not
part of the fact's text. Regression for the duplicated facts the gateway SIGKILL test
(``tests/e2e/test_flows_sigkill.py``) found."""

from pathlib import Path

from nexflow.memory import MemoryService, memory_tools
from nexflow.memory.notes import parse
from nexflow.tools.base import ToolContext


def ctx(key: str | None) -> ToolContext:
    return ToolContext(
        user_id="alice", session_id="flow:r1", channel="web", chat_id="c", idempotency_key=key
    )


async def test_a_step_run_again_with_its_key_saves_the_fact_once(
    keyword_memory: MemoryService,
) -> None:
    save = next(t for t in memory_tools(keyword_memory) if t.spec.name == "memory_save")
    first = await save.run({"text": "The build is green", "tags": ["ci"]}, ctx("r1:save:1"))
    again = await save.run({"text": "The build is green", "tags": ["ci"]}, ctx("r1:save:1"))
    assert first.data is not None and again.data is not None
    assert again.data["id"] == first.data["id"]
    note = keyword_memory.folder("alice") / Path(first.data["path"]).name
    text = note.read_text()
    assert text.count("- The build is green #ci <!-- key: r1:save:1 -->") == 1

    # another key (or none) is another save, even of the same text
    other = await save.run({"text": "The build is green", "tags": ["ci"]}, ctx("r2:save:1"))
    plain = await save.run({"text": "The build is green", "tags": ["ci"]}, ctx(None))
    assert other.data is not None and plain.data is not None
    assert note.read_text().count("- The build is green #ci") == 3
    # the mark is not part of the fact: the index and the parser see the text alone
    assert [c.text for c in parse(note.read_text())] == ["The build is green #ci"] * 3
    found = await keyword_memory.get("alice", int(first.data["id"]))
    assert found is not None and found.text == "The build is green #ci"


async def test_the_key_is_found_next_to_a_taint_mark(keyword_memory: MemoryService) -> None:
    save = next(t for t in memory_tools(keyword_memory) if t.spec.name == "memory_save")
    tainted = ToolContext(
        user_id="alice",
        session_id="flow:r3",
        channel="web",
        chat_id="c",
        tainted=("http_request",),
        idempotency_key="r3:note:1",
    )
    first = await save.run({"text": "Read on the web"}, tainted)
    again = await save.run({"text": "Read on the web"}, tainted)
    assert first.data is not None and again.data is not None
    assert again.data["id"] == first.data["id"] and again.data["tainted"] == ["http_request"]
    note = keyword_memory.folder("alice") / Path(first.data["path"]).name
    assert note.read_text().count("Read on the web") == 1
