"""A webhook with `turn: true`: the event becomes a model turn in the chat (fake Bot API),
once per delivery, untrusted from its start so a write waits for the person's yes."""

import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from test_webhooks import (
    CHAT,
    GITHUB_SECRET,
    RUN,
    TEMPLATE,
    Chat,
    github_headers,
    hooked_chat,
    post,
)

from nexflow.testing.fake_llm import Reply
from nexflow.testing.harness import GatewayHarness

CONFIG: dict[str, Any] = {
    "security": {"owner": {"telegram": [str(CHAT)]}},
    "outbox": {"initial_backoff_s": 0.1, "max_backoff_s": 0.5},
    "webhooks": {
        "inbound": {
            "triage": {
                "secret": GITHUB_SECRET,
                "scheme": "github",
                "to": {"channel": "telegram", "chat_id": str(CHAT)},
                "template": TEMPLATE + " — triage it.",
                "events": ["workflow_run"],
                "turn": True,
            },
            "stranger": {
                "secret": GITHUB_SECRET,
                "scheme": "github",
                "to": {"channel": "telegram", "chat_id": str(CHAT), "sender": "999"},
                "turn": True,
            },
        }
    },
}


@pytest.fixture
async def hooked(tmp_path: Path) -> AsyncIterator[tuple[GatewayHarness, Chat]]:
    async with hooked_chat(tmp_path, CONFIG) as running:
        yield running


async def test_the_event_is_a_turn_whose_reply_reaches_the_chat_once(
    hooked: tuple[GatewayHarness, Chat],
) -> None:
    gw, chat = hooked
    gw.llm.push(Reply(text="The tests job failed on main; see the run."))
    body = json.dumps(RUN).encode()
    first = await post(gw, "triage", body, github_headers(body, "d-1"))
    assert first.status_code == 202 and first.json() == {"status": "accepted"}
    answer = "The tests job failed on main; see the run."
    # Streamed into one message, edited in place until it is whole.
    await chat.fake.wait_for(lambda: [s.text for s in chat.new] == [answer], within=10)
    asked = gw.llm.requests[-1]["messages"][-1]
    assert asked["role"] == "user" and "CI tests: failure on main" in asked["content"]
    assert asked["content"].startswith("[webhook triage: an event from outside")
    again = await post(gw, "triage", body, github_headers(body, "d-1"))
    assert again.json() == {"status": "duplicate"}
    assert await chat.quiet(1) and len(gw.llm.requests) == 1


async def test_a_write_the_payload_asks_for_waits_for_the_person(
    hooked: tuple[GatewayHarness, Chat],
) -> None:
    gw, chat = hooked
    marker = gw.home / "workspace" / "pwned"
    call = ("run_skill", {"name": "file-write", "input": {"path": "pwned", "content": "x"}})
    gw.llm.push(Reply(tool_calls=(call,)))
    body = json.dumps(RUN).encode()
    assert (await post(gw, "triage", body, github_headers(body, "d-2"))).status_code == 202
    (card,) = await chat.wait(1)
    assert "webhook:triage" in card.text  # the card says where the instruction came from
    assert any("onfirm" in b["text"] for b in card.buttons)
    assert not marker.exists()


async def test_a_sender_the_channel_refuses_starts_nothing(
    hooked: tuple[GatewayHarness, Chat],
) -> None:
    gw, _ = hooked
    body = json.dumps(RUN).encode()
    resp = await post(gw, "stranger", body, github_headers(body, "d-3"))
    assert resp.status_code == 202 and resp.json() == {"status": "refused"}
    assert gw.llm.requests == []
