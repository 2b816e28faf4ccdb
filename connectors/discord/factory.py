"""How the composition root makes the Discord connector from ``connectors.discord``."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from nexflow.config.model import NexflowConfig
from nexflow.gateway.connector import Connector


def create(section: Mapping[str, Any], config: NexflowConfig) -> Connector:
    from connectors.discord.config import DiscordConfig
    from connectors.discord.connector import DiscordConnector  # imports discord.py

    settings = DiscordConfig.from_section(section)
    return DiscordConnector(settings, config.workspace_dir / "inbox" / "discord")
