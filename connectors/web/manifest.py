"""Dependency-free description of the web connector."""

from nexflow.gateway.connector import ConnectorManifest

MANIFEST = ConnectorManifest(
    name="web",
    module="connectors.web.connector",
    renders=frozenset({"text", "panel_snapshot", "confirmation", "patch_review", "file"}),
    description="Browser chat and the HTTP/WebSocket API (always on).",
)
