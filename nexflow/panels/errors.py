"""Diagnostics and the exception tree of :mod:`nexflow.panels`.

A :class:`Diagnostic` is one finding about an NXML document, positioned by 1-based
line and column, with a hint that says what to write instead. Exceptions carry a
tuple of them so an HTTP layer can answer 422 with the list as-is.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict

Severity = Literal["error", "warning"]


class Diagnostic(BaseModel):
    """One finding about a panel: parse error, validation error or layout warning."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    severity: Severity
    code: str
    message: str
    line: int
    column: int
    hint: str = ""

    def __str__(self) -> str:
        text = f"{self.line}:{self.column}: {self.severity}[{self.code}] {self.message}"
        return f"{text} (hint: {self.hint})" if self.hint else text


def error(code: str, message: str, line: int, column: int, hint: str = "") -> Diagnostic:
    return Diagnostic(
        severity="error", code=code, message=message, line=line, column=column, hint=hint
    )


def warning(code: str, message: str, line: int, column: int, hint: str = "") -> Diagnostic:
    return Diagnostic(
        severity="warning", code=code, message=message, line=line, column=column, hint=hint
    )


class PanelError(Exception):
    """Base of every error raised by :mod:`nexflow.panels`; ``diagnostics`` is never empty."""

    def __init__(self, diagnostics: tuple[Diagnostic, ...] | list[Diagnostic]) -> None:
        self.diagnostics: tuple[Diagnostic, ...] = tuple(diagnostics)
        first = self.diagnostics[0] if self.diagnostics else None
        super().__init__(str(first) if first else "invalid panel")

    @property
    def first(self) -> Diagnostic:
        return self.diagnostics[0]


class NXMLSyntaxError(PanelError):
    """The text is not well-formed XML, or its root is not ``<NexusPanel>``."""


class NXMLLimitError(PanelError):
    """The document exceeds a parser limit or uses a forbidden XML feature (DTD, entities)."""


class NXMLValidationError(PanelError):
    """The document parsed but :func:`nexflow.panels.validate` found errors."""
