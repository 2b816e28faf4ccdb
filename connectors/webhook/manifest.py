"""Dependency-free description of the outbound webhook connector."""

from nexflow.gateway.connector import ConnectorManifest

MANIFEST = ConnectorManifest(
    name="webhook",
    module="connectors.webhook.connector",
    renders=frozenset({"text"}),
    description="Outbound only: signed JSON POSTs of replies and notifications to one URL.",
)

CONFIG_MODEL = "connectors.webhook.config:WebhookConfig"
