"""Discord through the whole gateway: the real discord.py client against the fake Discord
REST API and gateway WebSocket, the fake LLM behind the orchestrator."""

from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import yaml

from nexflow.testing.fake_discord import FakeDiscord
from nexflow.testing.fake_llm import Reply
from nexflow.testing.harness import GatewayHarness


@pytest.fixture
async def discord_gateway(tmp_path: Path) -> AsyncIterator[tuple[GatewayHarness, FakeDiscord]]:
    fake = FakeDiscord()
    await fake.start()
    try:
        config = tmp_path / "config.yml"
        config.write_text(
            yaml.safe_dump(
                {
                    # Members with an allowed role may run shell skills (after confirming).
                    "permissions": {"roles": {"user": ["shell", "filesystem"]}},
                    "connectors": {
                        "discord": {
                            "bot_token": fake.token,
                            "api_base": fake.api_base,
                            "gateway_url": fake.gateway_url,
                            "guild_id": fake.guild_id,
                            "allowed_roles": ["dev"],
                            "guild_ready_timeout_s": 0.05,
                        }
                    },
                }
            )
        )
        async with GatewayHarness(tmp_path / "home", config_file=config, client="openai") as gw:
            yield gw, fake
    finally:
        await fake.stop()


async def test_guild_message_gets_a_reply(
    discord_gateway: tuple[GatewayHarness, FakeDiscord],
) -> None:
    gw, fake = discord_gateway
    alice = fake.add_user("alice", ("dev",))
    await fake.message("general", alice, "hello gateway", mention_bot=True)
    sent = await fake.wait_sent(1, within_s=15)
    assert sent[-1].content == "Echo: hello gateway"
    assert gw.llm.requests[-1]["messages"][-1]["content"] == "hello gateway"
    bob = fake.add_user("bob", ())  # no allowed role: never reaches the model
    await fake.message("general", bob, "let me in", mention_bot=True)
    await fake.message("general", alice, "second", mention_bot=True)
    sent = await fake.wait_sent(2, within_s=15)
    assert sent[-1].content == "Echo: second"
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
