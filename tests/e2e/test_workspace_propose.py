"""The model proposes a patch itself ("add a task for every failing server"): the same path
as a sync. Real gateway, real aiogram against the fake Bot API, the fake LLM calling
``workspace_overview`` and ``patch_propose``; nothing changes until the user presses
Accept."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from nexflow.testing.channels import running_telegram
from nexflow.testing.fake_llm import Reply
from nexflow.testing.fake_telegram import FakeTelegram
from nexflow.testing.harness import GatewayHarness
from tests.e2e.test_workspace_channels import OWNER, OWNER_CONFIG

TASKS = {"append": {"items": [{"text": "check db-2", "done": False}]}}


@pytest.fixture
async def telegram(tmp_path: Path) -> AsyncIterator[tuple[GatewayHarness, FakeTelegram]]:
    async with running_telegram(tmp_path, config=OWNER_CONFIG) as running:
        yield running


async def todo_items(gw: GatewayHarness) -> list[Any]:
    items: list[Any] = (await gw.http.get("/api/v1/panels/todo")).json()["state"]["items"]
    return items


def tool_message(gw: GatewayHarness, request: int) -> str:
    content: str = gw.llm.requests[request]["messages"][-1]["content"]
    return content


async def test_the_model_proposes_and_the_user_accepts(
    telegram: tuple[GatewayHarness, FakeTelegram],
) -> None:
    gw, fake = telegram
    fake.message(OWNER, "/panel new todo")
    await fake.wait_for(lambda: len(fake.sent) == 1, within=15)
    gw.llm.push(
        Reply(tool_calls=(("workspace_overview", {}),)),
        Reply(
            tool_calls=(
                (
                    "patch_propose",
                    {
                        "target": "panel:todo",
                        "content": json.dumps(TASKS),
                        "summary": "A task for the failing server db-2",
                    },
                ),
            )
        ),
        Reply(text="I proposed a task for db-2; accept it to add it."),
    )
    fake.message(OWNER, "add a task for every failing server")
    answer_text = "I proposed a task for db-2; accept it to add it."
    # the review card (outbox) and the streamed answer (a draft) race: find each by content
    await fake.wait_for(
        lambda: len(fake.sent) == 3 and any(m.text == answer_text for m in fake.sent), within=15
    )
    (review,) = [m for m in fake.sent[1:] if m.reply_markup is not None]
    assert "todo" in tool_message(gw, 1)  # the overview names the open panel
    assert "is pending" in tool_message(gw, 2)
    assert "A task for the failing server db-2" in review.text and "check db-2" in review.text
    assert await todo_items(gw) == []  # nothing changes before the user accepts

    accept, _ = review.buttons
    fake.press(review, accept["callback_data"], user_id=OWNER)
    await fake.wait_for(lambda: len(fake.sent) == 4, within=15)
    assert "accepted" in fake.sent[3].text
    assert await todo_items(gw) == [{"text": "check db-2", "done": False}]


async def test_an_invalid_proposal_is_refused_to_the_model(
    telegram: tuple[GatewayHarness, FakeTelegram],
) -> None:
    gw, fake = telegram
    fake.message(OWNER, "/panel new todo")
    await fake.wait_for(lambda: len(fake.sent) == 1, within=15)
    bad = {"state": {"items": "not a list"}}
    gw.llm.push(
        Reply(
            tool_calls=(
                ("patch_propose", {"target": "panel:todo", "content": bad, "summary": "x"}),
            )
        ),
        Reply(text="That did not work."),
    )
    fake.message(OWNER, "break the todo list")
    await fake.wait_for(
        lambda: len(fake.sent) == 2 and fake.sent[1].text == "That did not work.", within=15
    )
    refusal = tool_message(gw, 1)
    assert "items" in refusal and "pending" not in refusal
    assert gw.app is not None and gw.app.workspaces is not None
    assert await gw.app.workspaces.patches() == []  # anyone's
