"""Durable state behind repository interfaces: one protocol per aggregate
(:class:`Identities`, :class:`Sessions`, :class:`Queue`, :class:`Turns`, :class:`Audit`,
:class:`Tasks`, :class:`Stats`, :class:`Dashboard`, :class:`Hooks`) and :class:`Storage`,
their composition (:mod:`nexflow.storage.base` says where each lives and how a turn's
writes share one transaction).

:class:`SQLStorage` implements them on SQLite (WAL; the default) or Postgres
(``storage.url``), with the same queries and one migration history. Exceptions:
:class:`StorageError` (the database failed), :class:`MigrationError` (the schema is
newer than this code or a migration failed).
"""

from nexflow.storage.base import (
    Audit,
    AuditRecord,
    Dashboard,
    Hooks,
    Identities,
    InboxItem,
    MessageRecord,
    NewMessage,
    OutboxItem,
    PairingRequest,
    Queue,
    SessionRecord,
    Sessions,
    Stats,
    Storage,
    StorageError,
    TaskRecord,
    Tasks,
    Turns,
)
from nexflow.storage.migrations import MigrationError
from nexflow.storage.sql_storage import SQLStorage

__all__ = [
    "Audit",
    "AuditRecord",
    "Dashboard",
    "Hooks",
    "Identities",
    "InboxItem",
    "MessageRecord",
    "MigrationError",
    "NewMessage",
    "OutboxItem",
    "PairingRequest",
    "Queue",
    "SQLStorage",
    "SessionRecord",
    "Sessions",
    "Stats",
    "Storage",
    "StorageError",
    "TaskRecord",
    "Tasks",
    "Turns",
]
