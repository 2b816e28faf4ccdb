"""The importers' exception tree (documented in :mod:`nexflow.importers`)."""

from __future__ import annotations


class ImporterError(Exception):
    """Importing failed as a whole; ``message`` is safe to show the user."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class SourceNotFound(ImporterError):
    """The source folder does not exist or holds none of the tool's files."""


class SourceFileInvalid(ImporterError):
    """One source file cannot be read or parsed (bad JSON, JSON5, YAML or .env).

    Readers turn it into a ``failed`` report row; the rest of the import goes on.
    """

    def __init__(self, path: str, reason: str) -> None:
        super().__init__(f"{path}: {reason}")
        self.path = path
        self.reason = reason


class ConfigPatchError(ImporterError):
    """``config.yml`` could not be edited without risking the user's own settings."""
