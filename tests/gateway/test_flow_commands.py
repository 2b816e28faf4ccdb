"""``/flows``, ``/flow run``, ``/tasks`` and ``/task`` in Telegram, end to end: the real
aiogram client against the fake Bot API, a flow of transform and wait nodes saved over
HTTP by the same owner; the task card's Pause / Resume buttons control the run."""

from __future__ import annotations

import asyncio
import html
import re
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from nexflow import i18n
from nexflow.gateway.commands_flows import parse_args
from nexflow.testing.channels import running_telegram
from nexflow.testing.fake_telegram import FakeTelegram, Sent
from nexflow.testing.harness import GatewayHarness

OWNER = 4242
CONFIG = {
    "security": {"owner": {"telegram": [str(OWNER)]}},
    "outbox": {"initial_backoff_s": 0.1, "max_backoff_s": 0.5},
    "memory": {"paging": False},
}
SLOW = """\
name: slow
description: Waits a few seconds between two steps
inputs:
  start: {type: integer, default: 1}
  label: {type: string, default: "x"}
nodes:
  first: {type: transform, expr: "inputs.start"}
  nap: {type: wait, seconds: 3, needs: [first]}
  after: {type: transform, needs: [nap], expr: "inputs.label + '!'"}
"""
QUICK = """\
name: quick
nodes:
  one: {type: transform, expr: "inputs.n * 2"}
inputs:
  n: {type: integer, required: true}
"""
BROKEN = "name: broken\nnodes:\n  a: {type: transform, expr: '1', needs: [ghost]}\n"


@pytest.fixture
async def telegram(tmp_path: Path) -> AsyncIterator[tuple[GatewayHarness, FakeTelegram]]:
    async with running_telegram(tmp_path, config=CONFIG) as (gw, fake):
        for name, text in (("slow", SLOW), ("quick", QUICK)):
            resp = await gw.http.post("/api/v1/flows", json={"name": name, "yaml": text})
            assert resp.status_code == 200, resp.text
        # An invalid file in the workspace (written by hand, not through the API).
        assert gw.app is not None and gw.app.workspaces is not None
        service = await gw.app.workspaces.service()
        owner = await gw.app.storage.find_user("web", "owner")
        assert owner is not None
        await service.write_file(owner[0], "flows/broken.yaml", BROKEN)
        yield gw, fake


@dataclass(frozen=True)
class Said:
    """A message of the bot's: its text as a person reads it, its buttons."""

    sent: Sent
    text: str
    buttons: list[dict[str, Any]]


def said(sent: Sent) -> Said:
    return Said(sent, html.unescape(re.sub(r"<[^>]+>", "", sent.text)), sent.buttons)


async def say(fake: FakeTelegram, text: str) -> Said:
    """Send ``text`` as the owner; the bot's next message."""
    before = len(fake.sent)
    fake.message(OWNER, text)
    await fake.wait_for(lambda: len(fake.sent) > before, within=15)
    return said(fake.sent[before])


async def press(fake: FakeTelegram, card: Said, label: str) -> Said:
    button = next(b for b in card.buttons if label in b["text"])
    before = len(fake.sent)
    fake.press(card.sent, button["callback_data"], user_id=OWNER)
    await fake.wait_for(lambda: len(fake.sent) > before, within=15)
    return said(fake.sent[before])


async def state(
    gw: GatewayHarness, run_id: str, states: tuple[str, ...], within: float = 15
) -> str:
    deadline = time.monotonic() + within
    while True:
        status: str = (await gw.http.get(f"/api/v1/tasks/{run_id}")).json()["status"]
        if status in states or time.monotonic() > deadline:
            return status
        await asyncio.sleep(0.1)


def started_id(reply: Said) -> str:
    found = re.search(r"task ([0-9a-f]{32})", reply.text)
    assert found, reply.text
    return found.group(1)


async def test_flow_run_and_the_task_card_buttons(
    telegram: tuple[GatewayHarness, FakeTelegram],
) -> None:
    gw, fake = telegram
    listing = await say(fake, "/flows")
    assert listing.text.splitlines()[0] == "3 flows:"
    assert "✗ broken (invalid): flows/broken.yaml:3:" in listing.text and "ghost" in listing.text
    assert "• slow — Waits a few seconds between two steps" in listing.text

    reply = await say(fake, "/flow run slow start:=5 label=go")
    assert reply.text.startswith("Started slow: task ")
    run_id = started_id(reply)
    task = (await gw.http.get(f"/api/v1/tasks/{run_id}")).json()
    assert task["origin"]["channel"] == "telegram" and task["origin"]["chat_id"] == str(OWNER)
    assert await state(gw, run_id, ("waiting",)) == "waiting"

    card = await say(fake, f"/task {run_id}")
    assert card.text.startswith(f"Task {run_id[:8]} · slow")
    assert "waiting, 33% done" in card.text
    assert re.search(r"✓ first \(transform\): completed · [0-9.]+ s → 5\n", card.text)
    assert card.text.endswith(f"\n/task {run_id[:8]} pause|stop")
    assert "nap (wait): waiting" in card.text and "after (transform): pending" in card.text
    assert [b["text"] for b in card.buttons] == ["⏸ Pause", "⏹ Stop"]
    assert card.buttons[0]["callback_data"] == f"p:task:{run_id}:pause"

    paused = await press(fake, card, "Pause")
    assert f"Task {run_id[:8]} paused." in paused.text and "paused" in paused.text
    assert [b["text"] for b in paused.buttons] == ["▶ Resume", "⏹ Stop"]
    assert (await gw.http.get(f"/api/v1/tasks/{run_id}")).json()["status"] == "paused"

    resumed = await press(fake, paused, "Resume")
    assert f"Task {run_id[:8]} resumed." in resumed.text
    assert await state(gw, run_id, ("completed", "failed")) == "completed"
    final = (await gw.http.get(f"/api/v1/tasks/{run_id}")).json()
    assert final["stages"][-1]["output_preview"] == "go!"

    # A short id works; the list shows it with state and progress.
    done = await say(fake, f"/task {run_id[:6]}")
    assert "completed, 100% done" in done.text and done.buttons == []
    tasks = await say(fake, "/tasks")
    assert tasks.text.splitlines() == [
        "1 task, newest first:",
        f"✓ {run_id[:8]} slow — completed, 100%",
    ]


async def test_task_commands_stop_retry_and_refusals(
    telegram: tuple[GatewayHarness, FakeTelegram],
) -> None:
    gw, fake = telegram
    run_id = started_id(await say(fake, "/flow run slow"))
    await state(gw, run_id, ("waiting",))
    stopped = await say(fake, f"/task {run_id} stop")
    assert f"Task {run_id[:8]} stopped." in stopped.text and stopped.buttons == []
    refused = await say(fake, f"/task {run_id} resume")
    assert "cannot resume a run that is cancelled" in refused.text

    bad = await say(fake, "/flow run quick n=two")
    assert bad.text == "quick was not started: flow 'quick': input 'n' must be a integer"
    missing = await say(fake, "/flow run nothing")
    assert missing.text.startswith("nothing was not started: no flow named 'nothing'")
    invalid = await say(fake, "/flow run broken")
    assert "flows/broken.yaml:3:" in invalid.text
    assert (await say(fake, "/flow run quick n=")).text.startswith("quick was not started")
    assert (await say(fake, "/flow run quick 'n")).text.startswith("Could not read the arguments")
    assert (await say(fake, "/flow")).text.startswith("Usage: /flow run <name>")
    assert (await say(fake, "/task")).text.startswith("Usage: /task <id>")
    assert (await say(fake, "/task feedbeef")).text.startswith("There is no task feedbeef")
    assert (await say(fake, f"/task {run_id} explode")).text.startswith("Usage: /task <id>")


async def test_russian_replies_and_help(telegram: tuple[GatewayHarness, FakeTelegram]) -> None:
    gw, fake = telegram
    assert (await say(fake, "/lang ru")).text == "Язык: русский."
    help_text = (await say(fake, "/help")).text
    assert (
        "/flows — ваши сценарии" in help_text and "/task <id> pause|resume|stop|retry" in help_text
    )
    assert (await say(fake, "/flows")).text.splitlines()[0] == "3 сценария:"
    assert (
        await say(fake, "/tasks")
    ).text == "У вас пока нет задач. /flow run <имя> запустит сценарий."
    reply = await say(fake, "/flow run quick n:=21")
    assert reply.text.startswith("Запущен сценарий quick: задача ")
    run_id = started_id(reply)
    assert await state(gw, run_id, ("completed", "failed")) == "completed"
    card = await say(fake, f"/task {run_id}")
    assert card.text.startswith(f"Задача {run_id[:8]} · quick")
    assert "готово, выполнено 100%" in card.text
    assert re.search(r"✓ one \(transform\): готово · [0-9.]+ с → 42$", card.text)
    assert (await say(fake, "/tasks")).text.splitlines()[0] == "1 задача, сначала новые:"


def test_plural_forms() -> None:
    forms = {n: i18n.tn("ru", "tasks_header", n).split(",")[0] for n in (1, 2, 5, 11, 21, 22, 111)}
    assert forms == {
        1: "1 задача",
        2: "2 задачи",
        5: "5 задач",
        11: "11 задач",
        21: "21 задача",
        22: "22 задачи",
        111: "111 задач",
    }
    assert i18n.tn("en", "task_attempts", 1) == "1 attempt"
    assert i18n.tn("en", "task_attempts", 2) == "2 attempts"
    assert i18n.tn("ru", "task_attempts", 3) == "3 попытки"


def test_flow_arguments() -> None:
    assert parse_args("") == {}
    assert parse_args("""who="Ada Lovelace" n:=3 ok:=true tags:='["a"]'""") == {
        "who": "Ada Lovelace",
        "n": 3,
        "ok": True,
        "tags": ["a"],
    }
    assert parse_args('{"n": 3}') == {"n": 3}
    for bad in ("n", "n:=oops", "1x=2", "[1]", "{oops"):
        with pytest.raises(ValueError):
            parse_args(bad)
