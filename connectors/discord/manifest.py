"""Dependency-free description of the Discord connector."""

from nexflow.gateway.connector import ConnectorManifest

MANIFEST = ConnectorManifest(
    name="discord",
    module="connectors.discord.connector",
    renders=frozenset({"text", "panel_snapshot", "confirmation", "patch_review", "file"}),
    description="Discord bot (discord.py): server channels and DMs, embeds, buttons, files.",
)
