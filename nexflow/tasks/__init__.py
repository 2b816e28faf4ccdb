"""Background tasks: reminders on APScheduler 3 with a persistent SQLite job store.

Exceptions (``nexflow.tasks.errors``): :class:`ReminderError` is the root; its
``message`` is safe to show to users. Subclasses: :class:`ReminderInvalid` (a bad time,
cron expression, time zone or text), :class:`ReminderNotFound` (no such reminder *for
this user*; other users' reminders are reported the same way), :class:`ReminderRefused`
(the per-user limit or the budget hook said no), :class:`ReminderUnavailable` (the
scheduler could not start).

Importing this package imports no APScheduler: ``engine.py`` holds it and is imported in a
worker thread when the service starts (see ``service.py``).
"""

from nexflow.tasks.errors import (
    ReminderError,
    ReminderInvalid,
    ReminderNotFound,
    ReminderRefused,
    ReminderUnavailable,
)
from nexflow.tasks.model import Budget, Deliver, Reminder, ReminderTarget
from nexflow.tasks.service import ReminderService
from nexflow.tasks.tools import (
    ReminderAddTool,
    ReminderCancelTool,
    ReminderListTool,
    reminder_tools,
)

__all__ = [
    "Budget",
    "Deliver",
    "Reminder",
    "ReminderAddTool",
    "ReminderCancelTool",
    "ReminderError",
    "ReminderInvalid",
    "ReminderListTool",
    "ReminderNotFound",
    "ReminderRefused",
    "ReminderService",
    "ReminderTarget",
    "ReminderUnavailable",
    "reminder_tools",
]
