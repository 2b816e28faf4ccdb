"""Dependency-free description of the email connector."""

from nexflow.gateway.connector import ConnectorManifest

MANIFEST = ConnectorManifest(
    name="email",
    module="connectors.email.connector",
    renders=frozenset({"text"}),
    description="Email: IMAP polling in, SMTP replies in the same thread (one session each).",
)

CONFIG_MODEL = "connectors.email.config:EmailConfig"
