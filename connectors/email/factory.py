"""How the composition root makes the email connector from ``connectors.email``."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from nexflow.config.model import NexflowConfig
from nexflow.gateway.connector import Connector


def create(section: Mapping[str, Any], config: NexflowConfig) -> Connector:
    from connectors.email.config import EmailConfig
    from connectors.email.connector import EmailConnector

    return EmailConnector(
        EmailConfig.from_section(section),
        state_dir=config.home / "email",
        files_dir=config.workspace_dir / "inbox" / "email",
        workspace=config.workspace_dir,
    )
