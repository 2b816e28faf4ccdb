"""End to end: the model saves a fact in one session and finds it in a later one."""

from pathlib import Path

from nexflow.testing.fake_llm import Reply
from nexflow.testing.harness import GatewayHarness

HYBRID = {
    "NEXFLOW_MEMORY__EMBEDDER": "provider",
    "NEXFLOW_MEMORY__PROFILE": "default",
    "NEXFLOW_MEMORY__MODEL": "openai/fake-embedding",
}


async def test_a_saved_fact_is_found_in_a_later_session(tmp_path: Path) -> None:
    home = tmp_path / "home"
    async with GatewayHarness(home, env=HYBRID, client="openai") as gw:
        gw.llm.push(
            Reply(tool_calls=(("memory_save", {"text": "The user's boat is named Seagull"}),)),
            Reply(text="Noted."),
        )
        first = await gw.chat("remember that my boat is named Seagull")
        assert first["tool_calls"][0]["ok"] is True, first
        assert "Saved memory #" in first["tool_calls"][0]["result"]
        assert gw.llm.embedding_requests
    note = next((home / "workspace" / "memory").glob("*/*.md"))
    assert "Seagull" in note.read_text()

    async with GatewayHarness(home, env=HYBRID, client="openai") as gw:
        gw.llm.push(Reply(tool_calls=(("memory_search", {"query": "name of my boat"}),)))
        later = await gw.chat("what is my boat called?")
        assert later["session"] != first["session"]
        result = later["tool_calls"][0]["result"]
        assert "Seagull" in result and "keyword-only" not in result
        assert "Seagull" in later["reply"]  # the default brain reports the tool's result
