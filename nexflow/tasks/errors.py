"""The reminder exception tree (see the package docstring)."""

from __future__ import annotations


class ReminderError(Exception):
    """A reminder operation failed; ``message`` is safe to show to the user."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class ReminderInvalid(ReminderError):
    """The time, cron expression, time zone or text is not acceptable."""


class ReminderNotFound(ReminderError):
    """No reminder with that id belongs to this user."""


class ReminderRefused(ReminderError):
    """The per-user limit or the budget hook refused the reminder."""


class ReminderUnavailable(ReminderError):
    """The scheduler could not start (the gateway log has why)."""
