"""Dependency-free description of the Telegram connector."""

from nexflow.gateway.connector import ConnectorManifest

MANIFEST = ConnectorManifest(
    name="telegram",
    module="connectors.telegram.connector",
    renders=frozenset({"text", "panel_snapshot", "confirmation", "patch_review", "file"}),
    description="Telegram bot (aiogram 3): private chats and groups, long polling or webhook.",
)

CONFIG_MODEL = "connectors.telegram.config:TelegramConfig"
