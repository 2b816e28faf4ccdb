from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest

from connectors.discord.config import DiscordConfig
from connectors.discord.connector import DiscordConnector
from nexflow.testing.fake_discord import FakeDiscord

MakeBot = Callable[..., Awaitable[DiscordConnector]]


@pytest.fixture
async def fake() -> AsyncIterator[FakeDiscord]:
    server = FakeDiscord()
    await server.start()
    yield server
    await server.stop()


def config_for(fake: FakeDiscord, **options: Any) -> DiscordConfig:
    return DiscordConfig.model_validate(
        {
            "bot_token": fake.token,
            "api_base": fake.api_base,
            "gateway_url": fake.gateway_url,
            "guild_id": fake.guild_id,
            "guild_ready_timeout_s": 0.05,
            **options,
        }
    )


@pytest.fixture
async def make_bot(fake: FakeDiscord, tmp_path: Path) -> AsyncIterator[MakeBot]:
    """Start a connector against the fake with extra config options; stopped at teardown."""
    started: list[DiscordConnector] = []

    async def make(*, ready: bool = True, **options: Any) -> DiscordConnector:
        connector = DiscordConnector(config_for(fake, **options), tmp_path / "files")
        started.append(connector)
        await connector.start()
        if ready:
            await connector.wait_ready(5)
        return connector

    yield make
    for connector in started:
        await connector.stop()


@pytest.fixture
async def bot(make_bot: MakeBot) -> DiscordConnector:
    connector: DiscordConnector = await make_bot()
    return connector
