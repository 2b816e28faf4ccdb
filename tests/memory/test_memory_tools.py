"""memory_save / memory_search / memory_get through the tools, on real SQLite + sqlite-vec."""

import os
from pathlib import Path

import pytest

from nexflow.memory import MemoryService, memory_tools
from nexflow.testing.fake_llm import FakeLLMServer
from nexflow.tools.base import Tool, ToolContext, ToolError


def ctx(user_id: str = "alice") -> ToolContext:
    return ToolContext(user_id=user_id, session_id="s", channel="web", chat_id="c")


def tools(memory: MemoryService) -> dict[str, Tool]:
    return {t.spec.name: t for t in memory_tools(memory)}


async def test_save_search_get_with_hybrid_search(
    hybrid_memory: MemoryService, fake_llm: FakeLLMServer
) -> None:
    t = tools(hybrid_memory)
    saved = await t["memory_save"].run(
        {"text": "Alice's cat is called Murzik", "tags": ["pets"]}, ctx()
    )
    assert saved.data is not None
    item_id = saved.data["id"]
    note = hybrid_memory.folder("alice") / Path(saved.data["path"]).name
    assert "- Alice's cat is called Murzik #pets" in note.read_text()

    found = await t["memory_search"].run({"query": "what is the cat called", "k": 3}, ctx())
    assert found.data is not None
    assert found.data["mode"] == "hybrid" and found.data["notice"] is None
    assert found.data["ids"][0] == item_id
    assert f"#{item_id}" in found.content and "Murzik" in found.content
    assert fake_llm.embedding_requests  # vectors really came from the provider

    got = await t["memory_get"].run({"id": item_id}, ctx())
    assert got.data is not None and got.data["text"] == "Alice's cat is called Murzik #pets"
    assert got.data["tags"] == ["pets"]


async def test_keyword_only_search_says_so(keyword_memory: MemoryService) -> None:
    t = tools(keyword_memory)
    await t["memory_save"].run({"text": "The staging database runs on port 5433"}, ctx())
    found = await t["memory_search"].run({"query": "staging database port"}, ctx())
    assert found.data is not None and found.data["mode"] == "keyword"
    assert found.content.startswith("(keyword-only search: no embedder is configured")
    assert "5433" in found.content


async def test_users_never_see_each_others_items(hybrid_memory: MemoryService) -> None:
    t = tools(hybrid_memory)
    alice = await t["memory_save"].run({"text": "My bank PIN hint is the blue door"}, ctx())
    await t["memory_save"].run({"text": "Bob likes the blue door café"}, ctx("bob"))
    found = await t["memory_search"].run({"query": "blue door"}, ctx("bob"))
    assert "PIN" not in found.content and "café" in found.content
    assert alice.data is not None
    with pytest.raises(ToolError, match="no memory item"):
        await t["memory_get"].run({"id": alice.data["id"]}, ctx("bob"))
    assert hybrid_memory.folder("alice") != hybrid_memory.folder("bob")


async def test_hand_edits_are_reindexed(keyword_memory: MemoryService) -> None:
    t = tools(keyword_memory)
    kept = await t["memory_save"].run({"text": "Deploys happen on Tuesdays"}, ctx())
    assert kept.data is not None
    memory_md = keyword_memory.folder("alice") / "MEMORY.md"
    memory_md.write_text(
        "# Facts\n\n- The VPN gateway is vpn.example.org\n- Coffee: oat flat white\n"
    )
    found = await t["memory_search"].run({"query": "vpn gateway"}, ctx())
    assert "vpn.example.org" in found.content

    memory_md.write_text("# Facts\n\n- The VPN gateway moved to vpn2.example.org\n")
    stamp = memory_md.stat().st_mtime_ns
    os.utime(memory_md, ns=(stamp + 1_000_000, stamp + 1_000_000))
    found = await t["memory_search"].run({"query": "vpn gateway"}, ctx())
    assert "vpn2.example.org" in found.content and "vpn.example.org " not in found.content
    assert "Coffee" not in (await t["memory_search"].run({"query": "coffee"}, ctx())).content

    memory_md.unlink()
    found = await t["memory_search"].run({"query": "vpn gateway"}, ctx())
    assert found.content.endswith("No memory items match.")
    # Items of files that did not change keep their ids.
    again = await t["memory_get"].run({"id": kept.data["id"]}, ctx())
    assert "Tuesdays" in again.content


async def test_bad_arguments_are_clear(keyword_memory: MemoryService) -> None:
    t = tools(keyword_memory)
    with pytest.raises(ToolError, match="non-empty"):
        await t["memory_save"].run({"text": "  "}, ctx())
    with pytest.raises(ToolError, match="single words"):
        await t["memory_save"].run({"text": "x", "tags": ["two words"]}, ctx())
    with pytest.raises(ToolError, match="memory item number"):
        await t["memory_get"].run({"id": "latest"}, ctx())


async def test_embedder_outage_falls_back_to_keywords(
    tmp_path: Path, fake_llm: FakeLLMServer
) -> None:
    from nexflow.memory.embedder import OpenAICompatEmbedder

    await fake_llm.stop()  # nothing answers at the embedding endpoint any more
    embedder = OpenAICompatEmbedder(fake_llm.base_url, "fake", None, timeout_s=2)
    memory = MemoryService(tmp_path / "m.db", tmp_path / "ws", embedder)
    await memory.start()
    try:
        t = tools(memory)
        await t["memory_save"].run({"text": "The printer is on floor three"}, ctx())
        found = await t["memory_search"].run({"query": "printer floor"}, ctx())
    finally:
        await memory.stop()
    assert found.data is not None and found.data["mode"] == "keyword"
    assert "embedding provider is unreachable" in found.content
    assert "floor three" in found.content
