"""The user's own files in the system prompt: USER.md, RULES.md, skill hints, memory notes."""

import os
import threading
from collections.abc import Callable
from datetime import date
from pathlib import Path
from typing import Any

import pytest

from nexflow.memory.notes import user_dir
from nexflow.memory.userfiles import KEEP_USERS, UserFiles, parse_hints
from nexflow.testing.fake_llm import Reply
from nexflow.testing.harness import GatewayHarness

HINTS = """Hints for my skills; this line is not a hint.

## git-basic
Always show `git status` before committing.

## weather
Use Celsius.
"""


async def test_sections_rules_profile_hints_and_notes(tmp_path: Path) -> None:
    folder = user_dir(tmp_path, "u1")
    folder.mkdir(parents=True)
    files = UserFiles(tmp_path, max_chars=200, today=lambda: date(2025, 3, 2))
    assert await files.section("u1") == ""
    assert await files.section("nobody") == ""

    (folder / "USER.md").write_text("Ada, a backend engineer in Berlin.")
    (folder / "RULES.md").write_text("- Never push to main.")
    (folder / "SKILL_HINTS.md").write_text(HINTS)
    (folder / "MEMORY.md").write_text("- The staging host is stg-2.")
    (folder / "2025-03-01.md").write_text("# 2025-03-01\n\n- yesterday's note")
    (folder / "2025-03-02.md").write_text("# 2025-03-02\n\n" + "- today's note\n" * 30)
    (folder / "2025-02-01.md").write_text("- an old note")
    text = await files.section("u1", lambda: {"git-basic", "reminder"})
    assert "## About the user (USER.md)\nAda, a backend engineer in Berlin." in text
    assert "## The user's rules (RULES.md) — always follow them\n- Never push to main." in text
    assert "### git-basic\nAlways show `git status` before committing." in text
    assert "weather" not in text and "not a hint" not in text  # its skill is not in play
    assert "The staging host is stg-2." in text and "yesterday's note" in text
    assert "an old note" not in text
    assert "(earlier lines cut; memory_search finds them)" in text  # today's note, its tail
    assert text.index("RULES.md") < text.index("Skill hints") < text.index("MEMORY.md")

    (folder / "RULES.md").write_text("- Always answer in English.\n- Never push to main.")
    assert "Always answer in English." in await files.section("u1")
    (folder / "hints").mkdir()
    (folder / "hints" / "weather.md").write_text("Use Kelvin.")
    assert "### weather\nUse Kelvin." in await files.section("u1", lambda: ["Weather"])


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


class StatCalls:
    """Which threads ``stat`` / list files under ``root`` (os.stat, os.listdir, os.scandir)."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch, root: Path) -> None:
        self.threads: list[int] = []
        for name in ("stat", "listdir", "scandir"):
            monkeypatch.setattr(os, name, self._wrap(getattr(os, name), str(root)))

    def _wrap(self, real: Callable[..., Any], root: str) -> Callable[..., Any]:
        def recorded(path: Any = ".", *args: Any, **kwargs: Any) -> Any:
            if str(path).startswith(root):
                self.threads.append(threading.get_ident())
            return real(path, *args, **kwargs)

        return recorded


async def test_a_turn_reads_no_files_on_the_event_loop(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    folder = user_dir(tmp_path, "u1")
    (folder / "hints").mkdir(parents=True)
    (folder / "RULES.md").write_text("- Never push to main.")
    (folder / "hints" / "weather.md").write_text("Use Celsius.")
    files = UserFiles(tmp_path)
    calls = StatCalls(monkeypatch, tmp_path)
    for _ in range(5):
        text = await files.section("u1", lambda: ["weather"])
        assert "Never push to main." in text and "Use Celsius." in text
    assert calls.threads, "the files were checked"
    assert threading.get_ident() not in calls.threads


async def test_an_edit_reaches_the_next_turn(tmp_path: Path) -> None:
    folder = user_dir(tmp_path, "u1")
    folder.mkdir(parents=True)
    files = UserFiles(tmp_path)
    assert await files.section("u1") == ""
    (folder / "RULES.md").write_text("- Answer in haiku.")
    assert "Answer in haiku." in await files.section("u1")
    (folder / "RULES.md").write_text("- Answer in prose.")
    (folder / "USER.md").write_text("Ada.")
    text = await files.section("u1")
    assert "Answer in prose." in text and "haiku" not in text and "Ada." in text
    (folder / "RULES.md").unlink()
    assert "RULES.md" not in await files.section("u1")


async def test_snapshots_are_bounded(tmp_path: Path) -> None:
    files = UserFiles(tmp_path)
    folder = user_dir(tmp_path, "u0")
    folder.mkdir(parents=True)
    (folder / "RULES.md").write_text("- first user")
    assert "first user" in await files.section("u0")
    for i in range(1, KEEP_USERS + 5):
        await files.section(f"u{i}")
    assert len(files._snapshots) == KEEP_USERS
    assert "first user" in await files.section("u0")  # dropped, then read again


async def test_prompt_file_chars_zero_reads_nothing(tmp_path: Path) -> None:
    folder = user_dir(tmp_path, "u1")
    folder.mkdir(parents=True)
    (folder / "RULES.md").write_text("- Answer in haiku.")
    assert await UserFiles(tmp_path, max_chars=0).section("u1") == ""
