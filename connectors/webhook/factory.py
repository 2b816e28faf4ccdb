"""How the composition root makes the webhook connector from ``connectors.webhook``."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from nexflow.config.model import NexflowConfig
from nexflow.gateway.connector import Connector


def create(section: Mapping[str, Any], config: NexflowConfig) -> Connector:
    from connectors.webhook.config import WebhookConfig
    from connectors.webhook.connector import WebhookConnector  # imports aiohttp

    return WebhookConnector(WebhookConfig.from_section(section))
