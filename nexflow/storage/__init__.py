"""Durable state behind a small repository interface (:class:`Storage`).

SQLite (WAL) is the implementation here; the interface is what a Postgres backend
implements later. Exceptions: :class:`StorageError` (the database failed),
:class:`MigrationError` (the schema is newer than this code or a migration failed).
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
from nexflow.storage.sqlite import SQLiteStorage

__all__ = [
    "AuditRecord",
    "InboxItem",
    "MessageRecord",
    "MigrationError",
    "NewMessage",
    "OutboxItem",
    "PairingRequest",
    "SQLiteStorage",
    "SessionRecord",
    "Storage",
    "StorageError",
    "TaskRecord",
]
