"""A gateway wired to a fake chat platform: the config file, the fake and the harness.

``running_telegram`` and ``running_discord`` write ``<base>/config.yml`` with the
connector's section pointed at a fresh fake (short timeouts so tests run fast), start
the gateway with its home at ``<base>/home`` and yield ``(harness, fake)``. ``config``
adds top-level sections (``security``, ``permissions``, ...); keyword options go into the
connector's own section. The Discord helper returns once the client is READY: the fake
drops dispatches made before the client identifies.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import yaml

from nexflow.testing.fake_discord import FakeDiscord
from nexflow.testing.fake_telegram import FakeTelegram
from nexflow.testing.harness import GatewayHarness


def write_config(
    base: Path, connector: str, section: Mapping[str, Any], config: Mapping[str, Any] | None
) -> Path:
    """Write ``<base>/config.yml``: ``config`` plus the one connector section."""
    path = base / "config.yml"
    body = {**(config or {}), "connectors": {connector: dict(section)}}
    path.write_text(yaml.safe_dump(body))
    return path


def telegram_section(fake: FakeTelegram, **telegram: Any) -> dict[str, Any]:
    """The ``connectors.telegram`` section for ``fake``, with fast polling and watchdog."""
    return {
        "bot_token": fake.token,
        "api_server": fake.base_url,
        "poll_timeout_s": 1,
        "watchdog_s": 0.5,
        "typing": False,
        **telegram,
    }


@asynccontextmanager
async def running_telegram(
    base: Path, *, config: Mapping[str, Any] | None = None, client: str = "openai", **telegram: Any
) -> AsyncIterator[tuple[GatewayHarness, FakeTelegram]]:
    async with FakeTelegram() as fake:
        section = telegram_section(fake, **telegram)
        path = write_config(base, "telegram", section, config)
        async with GatewayHarness(base / "home", config_file=path, client=client) as gw:
            yield gw, fake


@asynccontextmanager
async def running_discord(
    base: Path, *, config: Mapping[str, Any] | None = None, client: str = "openai", **discord: Any
) -> AsyncIterator[tuple[GatewayHarness, FakeDiscord]]:
    from connectors.discord.connector import DiscordConnector

    fake = FakeDiscord()
    await fake.start()
    try:
        section = {
            "bot_token": fake.token,
            "api_base": fake.api_base,
            "gateway_url": fake.gateway_url,
            "guild_id": fake.guild_id,
            "allowed_roles": ["dev"],
            "guild_ready_timeout_s": 0.05,
            **discord,
        }
        path = write_config(base, "discord", section, config)
        async with GatewayHarness(base / "home", config_file=path, client=client) as gw:
            assert gw.app is not None
            connector = gw.app.connectors["discord"]
            assert isinstance(connector, DiscordConnector)
            await connector.wait_ready(15)
            yield gw, fake
    finally:
        await fake.stop()
