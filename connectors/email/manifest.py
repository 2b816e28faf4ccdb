"""Dependency-free description of the email connector."""

from nexflow.gateway.connector import ConnectorManifest

MANIFEST = ConnectorManifest(
    name="email",
    module="connectors.email.connector",
    renders=frozenset({"text", "file"}),
    description="Email: IMAP (IDLE or polling) in, SMTP replies in the same thread.",
)

CONFIG_MODEL = "connectors.email.config:EmailConfig"
