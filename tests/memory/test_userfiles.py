"""The user's own files in the system prompt: USER.md, RULES.md, skill hints, memory notes."""

from datetime import date
from pathlib import Path
from typing import Any

from nexflow.memory.notes import user_dir
from nexflow.memory.userfiles import UserFiles, parse_hints
from nexflow.testing.fake_llm import Reply
from nexflow.testing.harness import GatewayHarness

HINTS = """Hints for my skills; this line is not a hint.

## git-basic
Always show `git status` before committing.

## weather
Use Celsius.
"""


def test_sections_rules_profile_hints_and_notes(tmp_path: Path) -> None:
    folder = user_dir(tmp_path, "u1")
    folder.mkdir(parents=True)
    files = UserFiles(tmp_path, max_chars=200, today=lambda: date(2025, 3, 2))
    assert files.section("u1") == ""
    assert files.section("nobody") == ""

    (folder / "USER.md").write_text("Ada, a backend engineer in Berlin.")
    (folder / "RULES.md").write_text("- Never push to main.")
    (folder / "SKILL_HINTS.md").write_text(HINTS)
    (folder / "MEMORY.md").write_text("- The staging host is stg-2.")
    (folder / "2025-03-01.md").write_text("# 2025-03-01\n\n- yesterday's note")
    (folder / "2025-03-02.md").write_text("# 2025-03-02\n\n" + "- today's note\n" * 30)
    (folder / "2025-02-01.md").write_text("- an old note")
    text = files.section("u1", lambda: {"git-basic", "reminder"})
    assert "## About the user (USER.md)\nAda, a backend engineer in Berlin." in text
    assert "## The user's rules (RULES.md) — always follow them\n- Never push to main." in text
    assert "### git-basic\nAlways show `git status` before committing." in text
    assert "weather" not in text and "not a hint" not in text  # its skill is not in play
    assert "The staging host is stg-2." in text and "yesterday's note" in text
    assert "an old note" not in text
    assert "(earlier lines cut; memory_search finds them)" in text  # today's note, its tail
    assert text.index("RULES.md") < text.index("Skill hints") < text.index("MEMORY.md")

    (folder / "RULES.md").write_text("- Always answer in English.\n- Never push to main.")
    assert "Always answer in English." in files.section("u1")
    (folder / "hints").mkdir()
    (folder / "hints" / "weather.md").write_text("Use Kelvin.")
    assert "### weather\nUse Kelvin." in files.section("u1", lambda: ["Weather"])


def test_hint_sections() -> None:
    assert parse_hints(HINTS) == {
        "git-basic": "Always show `git status` before committing.",
        "weather": "Use Celsius.",
    }
    assert parse_hints("no headings at all") == {}


async def test_rules_and_profile_reach_the_prompt_and_follow_edits(tmp_path: Path) -> None:
    async with GatewayHarness(tmp_path / "home", client="openai") as gw:
        assert gw.app is not None
        first = await gw.chat("hi")
        bare = gw.llm.requests[-1]["messages"][0]["content"]
        assert "RULES.md" not in bare and "USER.md" not in bare
        session = await gw.app.storage.get_session(first["session"])
        assert session is not None
        folder = user_dir(gw.app.config.workspace_dir, session.user_id)
        folder.mkdir(parents=True, exist_ok=True)
        (folder / "RULES.md").write_text("- Answer in haiku.\n")
        (folder / "USER.md").write_text("Name: Ada. Team: payments.\n")

        def system(request: dict[str, Any]) -> str:
            return str(request["messages"][0]["content"])

        gw.llm.push(Reply(text="ok"))
        await gw.chat("hello again", session=first["session"])
        prompt = system(gw.llm.requests[-1])
        assert "- Answer in haiku." in prompt and "Name: Ada. Team: payments." in prompt

        (folder / "RULES.md").write_text("- Answer in plain prose, at most two sentences.\n")
        gw.llm.push(Reply(text="ok"))
        await gw.chat("and now?", session=first["session"])
        prompt = system(gw.llm.requests[-1])
        assert "at most two sentences" in prompt and "haiku" not in prompt
