"""The exception tree of :mod:`nexflow.scale` (drawn in the package docstring)."""

from __future__ import annotations


class ScaleError(Exception):
    """A coordination primitive could not do what was asked."""


class ScaleUnavailable(ScaleError):
    """The shared backend (Postgres, Redis) cannot be reached or failed; the driver's
    error is the ``__cause__``."""


class MessagesLost(ScaleError):
    """Raised once by a bus subscription's iterator when messages may have been missed:
    the connection to the backend was lost and re-made, or the subscriber fell more than
    its queue behind. The subscription keeps working; iterate it again after catching
    this (and re-read from storage whatever must not be missed)."""

    def __init__(self, channel: str, reason: str) -> None:
        super().__init__(f"bus channel {channel!r}: messages may have been lost ({reason})")
        self.channel = channel
        self.reason = reason


class PayloadTooLarge(ScaleError):
    """A bus payload above what the backend carries (see the bus's ``max_payload``)."""
