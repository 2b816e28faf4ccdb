"""Errors of the memory package.

``MemoryStoreError`` is the root. ``EmbedderError`` means the embedding provider failed or
answered something unusable; memory then falls back to keyword search for that call and
says so. Every ``message`` is written by Nexflow and safe to show to the model and the user;
the provider's own error text stays in the log.
"""

from __future__ import annotations


class MemoryStoreError(Exception):
    """Something in long-term memory failed; ``message`` is safe to show."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class EmbedderError(MemoryStoreError):
    """The embedding provider could not embed the texts."""
