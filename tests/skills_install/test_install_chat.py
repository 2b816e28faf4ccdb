"""``/skill install`` in chat: owner only, a confirmation card with the findings, the
plan kept in quarantine across the parked turn (and a restart), re-asked if it changed."""

from __future__ import annotations

from pathlib import Path

import pytest
from install_support import FIXTURES

from nexflow.skills.install import Installer
from nexflow.skills.install.chat import ChatInstall
from nexflow.tools.base import ApprovalRequired, ToolContext


def context(role: str = "owner", decision: bool | None = None) -> ToolContext:
    async def confirm(title: str, detail: str) -> bool:
        if decision is None:
            raise ApprovalRequired(title, detail)
        return decision

    return ToolContext("u1", "s1", "web", "c1", role=role, confirm=confirm)


def lock_names(installer: Installer) -> set[str]:
    return set(installer.lock().entries)


async def test_card_then_install_after_a_restart(home: Path) -> None:
    source = str(FIXTURES / "hidden-network")
    with pytest.raises(ApprovalRequired) as asked:
        await ChatInstall(Installer.at_home(home)).handle(f"install {source}", context())
    assert asked.value.title == "Install skill 'note-sorter' despite the scan's findings?"
    assert "declares:    filesystem" in asked.value.detail
    assert "undeclared-network   scripts/sort.py:3" in asked.value.detail
    assert lock_names(Installer.at_home(home)) == set()
    # The turn is resumed with the answer, by a fresh process.
    installer = Installer.at_home(home)
    reply = await ChatInstall(installer).handle(f"install {source}", context(decision=True))
    assert reply == "Installed note-sorter (2 file(s) locked)."
    assert lock_names(installer) == {"note-sorter"}
    assert not any((home / "quarantine" / "skills").glob("note-sorter-*"))
    assert not any((home / "quarantine" / "skills" / "pending").iterdir())


async def test_declined_installs_nothing_and_cleans_up(home: Path) -> None:
    installer = Installer.at_home(home)
    chat = ChatInstall(installer)
    source = str(FIXTURES / "clean")
    with pytest.raises(ApprovalRequired):
        await chat.handle(f"install {source}", context())
    reply = await chat.handle(f"install {source}", context(decision=False))
    assert reply == "word-count was not installed."
    assert lock_names(installer) == set()
    assert [p.name for p in (home / "quarantine" / "skills").iterdir()] == ["pending"]


async def test_tampered_quarantine_installs_what_the_card_showed(
    home: Path,
    fixture_copy,  # type: ignore[no-untyped-def]
) -> None:
    installer = Installer.at_home(home)
    chat = ChatInstall(installer)
    source = str(fixture_copy("clean"))
    with pytest.raises(ApprovalRequired):
        await chat.handle(f"install {source}", context())
    staged = next((home / "quarantine" / "skills").glob("clean-*"))
    (staged / "fetch" / "scripts" / "count.py").write_text("import socket\n")
    reply = await chat.handle(f"install {source}", context(decision=True))
    assert reply.startswith("Installed word-count")  # fetched again: same files as shown
    installed = home / "skills" / "word-count" / "scripts" / "count.py"
    assert installed.read_text() == (FIXTURES / "clean" / "scripts" / "count.py").read_text()


async def test_a_source_changed_after_the_card_is_not_installed(
    home: Path,
    fixture_copy,  # type: ignore[no-untyped-def]
) -> None:
    installer = Installer.at_home(home)
    chat = ChatInstall(installer)
    source = fixture_copy("clean")
    with pytest.raises(ApprovalRequired):
        await chat.handle(f"install {source}", context())
    (source / "scripts" / "count.py").write_text("import socket\n")
    next((home / "quarantine" / "skills").glob("clean-*")).joinpath("fetch", "x").write_text("")
    reply = await chat.handle(f"install {source}", context(decision=True))
    assert reply.startswith("The skill changed since its confirmation card was shown")
    assert lock_names(installer) == set()
    assert [p.name for p in (home / "quarantine" / "skills").iterdir()] == ["pending"]


async def test_an_answer_without_a_card_on_record_installs_nothing(home: Path) -> None:
    installer = Installer.at_home(home)
    reply = await ChatInstall(installer).handle(
        f"install {FIXTURES / 'clean'}", context(decision=True)
    )
    assert reply.startswith("That approval is for a plan no longer on record")
    assert lock_names(installer) == set()


async def test_only_the_owner(home: Path) -> None:
    chat = ChatInstall(Installer.at_home(home))
    reply = await chat.handle(f"install {FIXTURES / 'clean'}", context(role="user"))
    assert reply == "Only the owner can install or verify skills."


async def test_usage_errors_and_verify(home: Path) -> None:
    chat = ChatInstall(Installer.at_home(home))
    assert (await chat.handle("", context())).startswith("Usage: /skill install")
    assert (await chat.handle("install /nonexistent/x", context())).startswith(
        "Not installed: no such folder or archive"
    )
    assert await chat.handle("verify", context()) == "No installed skills."
