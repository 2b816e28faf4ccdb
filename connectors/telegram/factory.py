"""How the composition root makes the Telegram connector from ``connectors.telegram``."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from nexflow.config.model import NexflowConfig
from nexflow.gateway.connector import Connector


def create(section: Mapping[str, Any], config: NexflowConfig) -> Connector:
    from connectors.telegram.config import TelegramConfig
    from connectors.telegram.connector import TelegramConnector  # imports aiogram

    settings = TelegramConfig.from_section(section)
    return TelegramConnector(settings, files_dir=config.workspace_dir / "inbox" / "telegram")
