"""Patch review on the chat platforms, end to end: the real aiogram / discord.py clients
against the fake Bot API / Discord, the fake LLM as the sync model. The Sync button of a
panel snapshot starts the sync; the review's Accept / Reject buttons decide the patch."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from nexflow.testing.channels import (
    running_discord,
    running_telegram,
    telegram_section,
    write_config,
)
from nexflow.testing.fake_discord import FakeDiscord
from nexflow.testing.fake_llm import Reply
from nexflow.testing.fake_telegram import FakeTelegram
from nexflow.testing.harness import GatewayHarness

OWNER = 4242
OWNER_CONFIG = {
    "security": {"owner": {"telegram": [str(OWNER)]}},
    "outbox": {"initial_backoff_s": 0.1, "max_backoff_s": 0.5},
}
NOTE = {"title": "buy milk", "body": ""}
SYNC = Reply(
    text=json.dumps(
        {
            "changes": [
                {"target": "panel:notes", "summary": "Add buy milk", "append": {"notes": [NOTE]}}
            ]
        }
    )
)


async def add_todo(gw: GatewayHarness, text: str) -> None:
    added = await gw.http.post("/api/v1/panels/todo/tools/add_item", json={"text": text})
    assert added.json()["ok"] is True


async def notes_state(gw: GatewayHarness) -> list[Any]:
    notes: list[Any] = (await gw.http.get("/api/v1/panels/notes")).json()["state"]["notes"]
    return notes


# -- Telegram --------------------------------------------------------------------------


@pytest.fixture
async def telegram(tmp_path: Path) -> AsyncIterator[tuple[GatewayHarness, FakeTelegram]]:
    async with running_telegram(tmp_path, config=OWNER_CONFIG) as running:
        yield running


async def telegram_review(gw: GatewayHarness, fake: FakeTelegram) -> Any:
    """Open the panels, edit todo, press its Sync button; the review message."""
    fake.message(OWNER, "/panel new notes")
    fake.message(OWNER, "/panel new todo")
    await fake.wait_for(lambda: len(fake.sent) == 2, within=15)
    todo = fake.sent[1]
    await add_todo(gw, "buy milk")
    sync = next(b for b in todo.buttons if b["callback_data"] == "p:sync:todo")
    assert sync["text"] == "⟳ Sync"
    gw.llm.push(SYNC)
    fake.press(todo, sync["callback_data"], user_id=OWNER)
    await fake.wait_for(lambda: len(fake.sent) == 4, within=15)
    progress, review = fake.sent[2:]
    assert progress.text.startswith("Syncing todo")
    assert "Add buy milk" in review.text and "buy milk" in review.text
    assert "state keys changed: notes" in review.text
    return review


async def test_telegram_accept_button_merges(
    telegram: tuple[GatewayHarness, FakeTelegram],
) -> None:
    gw, fake = telegram
    review = await telegram_review(gw, fake)
    accept, reject = review.buttons
    assert (accept["text"], reject["text"]) == ("✅ Accept", "✖ Reject")
    patch_id = accept["callback_data"].removeprefix("a:")
    assert reject["callback_data"] == f"r:{patch_id}"
    fake.press(review, accept["callback_data"], user_id=OWNER)
    await fake.wait_for(lambda: len(fake.sent) == 5, within=15)
    merged = fake.sent[4]
    assert f"Patch {patch_id} accepted" in merged.text and "buy milk" in merged.text
    assert review.reply_markup is None  # the keyboard goes once pressed (private chat)
    assert await notes_state(gw) == [NOTE]


async def test_telegram_reject_button_drops_the_patch(
    telegram: tuple[GatewayHarness, FakeTelegram],
) -> None:
    gw, fake = telegram
    review = await telegram_review(gw, fake)
    _, reject = review.buttons
    fake.press(review, reject["callback_data"], user_id=OWNER)
    await fake.wait_for(lambda: len(fake.sent) == 5, within=15)
    assert "rejected" in fake.sent[4].text
    assert await notes_state(gw) == []
    # The web owner is the same person as the Telegram owner: one user, one patch list.
    assert [p["status"] for p in (await gw.http.get("/api/v1/patches")).json()] == ["rejected"]


async def test_telegram_accept_button_still_works_after_a_restart(tmp_path: Path) -> None:
    async with FakeTelegram() as fake:
        config = write_config(tmp_path, "telegram", telegram_section(fake), OWNER_CONFIG)
        home = tmp_path / "home"
        async with GatewayHarness(home, config_file=config, client="openai") as gw:
            review = await telegram_review(gw, fake)
        async with GatewayHarness(home, config_file=config, client="openai") as gw:
            accept, _ = review.buttons
            fake.press(review, accept["callback_data"], user_id=OWNER)
            await fake.wait_for(lambda: len(fake.sent) == 5, within=15)
            assert "accepted" in fake.sent[4].text
            assert await notes_state(gw) == [NOTE]


# -- Discord ---------------------------------------------------------------------------


@pytest.fixture
async def discord(tmp_path: Path) -> AsyncIterator[tuple[GatewayHarness, FakeDiscord]]:
    async with running_discord(tmp_path) as running:
        yield running


def custom_ids(message: Any) -> list[str]:
    return [c["custom_id"] for row in message.components for c in row.get("components", [])]


async def test_discord_sync_and_accept_buttons(
    discord: tuple[GatewayHarness, FakeDiscord],
) -> None:
    gw, fake = discord
    alice = fake.add_user("alice", ("dev",))
    await fake.message("general", alice, "/panel new notes", mention_bot=True)
    await fake.message("general", alice, "/panel new todo", mention_bot=True)
    await fake.wait_for(lambda: len(fake.sent) == 2, within_s=15)
    todo = fake.sent[1]
    assert "nxf:press:sync:todo" in custom_ids(todo)
    assert gw.app is not None and gw.app.panels is not None
    panels = gw.app.panels  # alice's panels: the web owner may not touch them
    assert (await panels.call_tool("todo", "add_item", {"text": "buy milk"})).ok
    gw.llm.push(SYNC)
    await fake.click(todo.id, "nxf:press:sync:todo", alice)
    await fake.wait_for(lambda: len(fake.sent) == 4, within_s=15)
    progress, review = fake.sent[2:]
    assert progress.content.startswith("Syncing todo")
    (embed,) = review.embeds
    assert embed["title"].endswith("Add buy milk") and "buy milk" in embed["description"]
    accept, reject = custom_ids(review)
    patch_id = accept.removeprefix("nxf:accept:")
    assert reject == f"nxf:reject:{patch_id}"
    await fake.click(review.id, accept, alice)
    await fake.wait_for(lambda: len(fake.sent) == 5, within_s=15)
    assert panels.get("notes").state["notes"] == [NOTE]
    card = fake.sent[4].embeds[0]
    assert f"Patch {patch_id} accepted" in card["description"]
