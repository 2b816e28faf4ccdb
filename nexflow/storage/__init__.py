"""Durable state behind a small repository interface (:class:`Storage`).

:class:`SQLStorage` implements it on SQLite (WAL; the default) or Postgres
(``storage.url``), with the same queries and one migration history. Exceptions:
:class:`StorageError` (the database failed), :class:`MigrationError` (the schema is
newer than this code or a migration failed).
"""

from nexflow.storage.base import (
    AuditRecord,
    InboxItem,
    MessageRecord,
    NewMessage,
    OutboxItem,
    PairingRequest,
    SessionRecord,
    Storage,
    StorageError,
    TaskRecord,
)
from nexflow.storage.migrations import MigrationError
from nexflow.storage.sql_storage import SQLStorage

__all__ = [
    "AuditRecord",
    "InboxItem",
    "MessageRecord",
    "MigrationError",
    "NewMessage",
    "OutboxItem",
    "PairingRequest",
    "SQLStorage",
    "SessionRecord",
    "Storage",
    "StorageError",
    "TaskRecord",
]
