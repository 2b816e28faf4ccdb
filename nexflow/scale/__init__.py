"""What several gateway replicas coordinate through: session leases, leader election for
singletons (one Telegram poller per bot token, one Discord connection per shard), a
cross-replica event bus for ephemeral fan-out, and shared rate limits and breaker counts.

Each primitive is a small protocol with a single-process implementation (one gateway,
SQLite) and shared ones (Postgres; Redis for the bus and the limits when ``redis.url``
is set). Nothing here is global: the composition root builds one of each and passes it
down. docs/scale-out.md ("Replicas") describes how the gateway uses them.

Exceptions (all in :mod:`nexflow.scale.errors`)::

    ScaleError                 anything this package raises
    ├── ScaleUnavailable       the shared backend (Postgres, Redis) cannot be reached
    ├── MessagesLost           a bus subscription missed messages (reconnect, too slow)
    └── PayloadTooLarge        a bus payload above the backend's limit
"""

from nexflow.scale.errors import MessagesLost, PayloadTooLarge, ScaleError, ScaleUnavailable

__all__ = ["MessagesLost", "PayloadTooLarge", "ScaleError", "ScaleUnavailable"]
