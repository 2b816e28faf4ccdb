"""The gateway runtime: publish → durable inbox → bus → orchestrator → outbox → connector.

Exceptions: :class:`~nexflow.gateway.connector.DeliveryError` (a connector could not
deliver); rejections on publish are :class:`nexflow.bus.Rejected`.
"""

from nexflow.gateway.connector import Connector, ConnectorManifest, DeliveryError
from nexflow.gateway.core import Gateway, TurnSummary
from nexflow.gateway.outbox import OutboxDispatcher

__all__ = [
    "Connector",
    "ConnectorManifest",
    "DeliveryError",
    "Gateway",
    "OutboxDispatcher",
    "TurnSummary",
]
