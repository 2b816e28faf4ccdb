"""The one place that decides which engine the gateway's storage runs on.

``storage.url`` (env ``NEXFLOW_STORAGE__URL``) names it: ``sqlite:///PATH`` or
``postgresql://…``; null means the SQLite file ``storage.path`` (default
``<home>/nexflow.db``). Every command that opens the gateway's database — ``serve``,
``pair``, ``inbox``, ``skills``, ``import``, ``doctor`` — comes through here, so they all
agree on where the data is.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from nexflow.storage.engine import Engine, engine_for

if TYPE_CHECKING:
    from nexflow.config.model import NexflowConfig
    from nexflow.storage.sql_storage import SQLStorage


def engine_of(config: NexflowConfig) -> Engine:
    """The configured engine, not opened yet."""
    return engine_for(
        config.storage_url,
        busy_timeout_ms=config.storage.busy_timeout_ms,
        threads=config.storage.threads,
    )


def storage_for(config: NexflowConfig) -> SQLStorage:
    """The gateway's storage on the configured engine (``await storage.open()`` it)."""
    from nexflow.storage.sql_storage import SQLStorage

    return SQLStorage(engine_of(config))
