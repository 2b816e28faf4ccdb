"""One receiver per bot across replicas: the composition root hands the deployment's
leadership (:func:`~nexflow.scale.leader.leadership_for`) to every connector that is
:class:`~nexflow.gateway.connector.Elected`.

On Postgres the leadership is an advisory lock per name (``telegram:<bot id>``,
``discord:<application id>:<shard>``): one replica polls Telegram or holds the Discord
gateway connection, the others wait on the lock and one takes over within moments when
the leader's connection ends (SIGKILL, network). On SQLite (one gateway) it is the
in-process leadership: granted at once, so a single box behaves as before. Webhook-mode
Telegram is not elected (every replica can receive a webhook), and sending is never
elected (every replica delivers its outbox items).
"""

from __future__ import annotations

from collections.abc import Mapping

from nexflow.gateway.connector import Connector, Elected
from nexflow.scale.leader import Leadership, leadership_for


def elect_connectors(connectors: Mapping[str, Connector], storage_url: str) -> Leadership:
    """Give the elected connectors the leadership ``storage_url`` calls for (before
    they start); returns it."""
    leadership = leadership_for(storage_url)
    for connector in connectors.values():
        if isinstance(connector, Elected):
            connector.elect(leadership)
    return leadership
