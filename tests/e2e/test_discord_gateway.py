"""Discord through the whole gateway: the real discord.py client against the fake Discord
REST API and gateway WebSocket, the fake LLM behind the orchestrator."""

from collections.abc import AsyncIterator
from contextlib import AbstractAsyncContextManager
from pathlib import Path

import pytest

from connectors.discord.render import split_text
from nexflow.testing.channels import running_discord
from nexflow.testing.fake_discord import FakeDiscord
from nexflow.testing.fake_llm import Reply
from nexflow.testing.harness import GatewayHarness

# Members with an allowed role may run shell skills (after confirming).
PERMISSIONS = {"permissions": {"roles": {"user": ["shell", "filesystem"]}}}


def discord_gateway_with(
    tmp_path: Path, **discord: object
) -> AbstractAsyncContextManager[tuple[GatewayHarness, FakeDiscord]]:
    return running_discord(tmp_path, config=PERMISSIONS, **discord)


@pytest.fixture
async def discord_gateway(tmp_path: Path) -> AsyncIterator[tuple[GatewayHarness, FakeDiscord]]:
    async with discord_gateway_with(tmp_path) as running:
        yield running


def shown(fake: FakeDiscord) -> list[str]:
    """What the chat shows now (a streamed draft is edited into the final text)."""
    return [m.content for m in fake.sent if not m.deleted]


async def test_guild_message_gets_a_reply(
    discord_gateway: tuple[GatewayHarness, FakeDiscord],
) -> None:
    gw, fake = discord_gateway
    alice = fake.add_user("alice", ("dev",))
    await fake.message("general", alice, "hello gateway", mention_bot=True)
    await fake.wait_for(lambda: shown(fake) == ["Echo: hello gateway"], within_s=15)
    assert gw.llm.requests[-1]["messages"][-1]["content"] == "hello gateway"
    bob = fake.add_user("bob", ())  # no allowed role: never reaches the model
    await fake.message("general", bob, "let me in", mention_bot=True)
    await fake.message("general", alice, "second", mention_bot=True)
    want = ["Echo: hello gateway", "Echo: second"]
    await fake.wait_for(lambda: shown(fake) == want, within_s=15)
    assert [m["content"] for m in gw.llm.requests[-1]["messages"] if m["role"] == "user"] == [
        "hello gateway",
        "second",
    ]


async def test_confirmation_button_round_trip(
    discord_gateway: tuple[GatewayHarness, FakeDiscord],
) -> None:
    gw, fake = discord_gateway
    alice = fake.add_user("alice", ("dev",))
    call = ("run_skill", {"name": "shell-run", "input": {"command": "echo from-discord"}})
    gw.llm.push(Reply(tool_calls=(call,)))
    await fake.message("general", alice, "run it", mention_bot=True)
    (ask,) = await fake.wait_sent(1, within_s=15)
    buttons = [c for row in ask.components for c in row.get("components", [])]
    confirm = next(b for b in buttons if b["custom_id"].startswith("nxf:confirm:"))
    await fake.click(ask.id, confirm["custom_id"], alice)
    await fake.wait_for(lambda: any("from-discord" in m.content for m in fake.sent[1:]), 15)
    tool_result = gw.llm.requests[-1]["messages"][-1]
    assert tool_result["role"] == "tool" and "from-discord" in tool_result["content"]


async def test_reply_streams_into_one_edited_message(tmp_path: Path) -> None:
    async with discord_gateway_with(tmp_path, stream_edit_interval_s=0) as (gw, fake):
        alice = fake.add_user("alice", ("dev",))
        text = "please write a reply long enough to arrive in several streamed pieces"
        await fake.message("general", alice, text, mention_bot=True)
        await fake.wait_for(lambda: shown(fake) == [f"Echo: {text}"], within_s=15)
        (reply,) = fake.sent  # one message: the draft, edited into the final reply
        assert len(reply.edits) > 1 and reply.edits[-1] == f"Echo: {text}"
        assert gw.llm.requests[-1].get("stream") is True


async def test_long_streamed_reply_is_split_at_2000_in_order(tmp_path: Path) -> None:
    async with discord_gateway_with(tmp_path, stream_edit_interval_s=0.05) as (gw, fake):
        alice = fake.add_user("alice", ("dev",))
        answer = "\n".join(f"{i:03d} " + "word " * 16 for i in range(80))  # ~6,800 characters
        gw.llm.push(Reply(text=answer))
        await fake.message("general", alice, "tell me a lot", mention_bot=True)
        parts = split_text(answer)
        await fake.wait_for(lambda: shown(fake) == parts, within_s=20)
        assert len(parts) == 4 and all(len(p) <= 2000 for p in parts)
        assert "\n".join(shown(fake)).split("\n") == answer.split("\n")
        assert fake.deleted == [] and any(m.edits for m in fake.sent)
        assert [int(m.id) for m in fake.sent] == sorted(int(m.id) for m in fake.sent)
