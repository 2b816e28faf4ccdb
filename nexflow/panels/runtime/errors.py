"""Exceptions of the panel runtime (the tree is documented in ``nexflow.panels.runtime``).

Every exception carries ``code`` (a stable snake_case word for the HTTP error body
and the tool-call reply) and ``message`` (safe to show to the user and the model).
"""

from __future__ import annotations

from nexflow.panels.ast import Handler
from nexflow.panels.errors import Diagnostic
from nexflow.sandbox import (
    CapabilityDenied,
    GuestError,
    MemoryLimitExceeded,
    OutOfFuel,
    SandboxError,
    WallTimeExceeded,
)


class PanelRuntimeError(Exception):
    """Base class. ``code`` is stable, ``message`` is safe to show."""

    code = "panel_error"

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class PanelNotFound(PanelRuntimeError):
    code = "unknown_panel"


class TemplateNotFound(PanelRuntimeError):
    code = "unknown_template"


class VersionNotFound(PanelRuntimeError):
    code = "unknown_version"


class PanelInvalid(PanelRuntimeError):
    """The NXML did not parse or validate; ``diagnostics`` says where and why."""

    code = "invalid_nxml"

    def __init__(self, message: str, diagnostics: tuple[Diagnostic, ...]) -> None:
        super().__init__(message)
        self.diagnostics = diagnostics


class GrantInvalid(PanelRuntimeError):
    code = "invalid_grant"


class WorkspaceNameInvalid(PanelRuntimeError):
    """A new panel was asked for in a workspace whose name is not valid."""

    code = "invalid_workspace"


class SandboxUnavailable(PanelRuntimeError):
    """The sandbox guest is not built (or failed to load); panels cannot run or render."""

    code = "sandbox_unavailable"


class CallFailed(PanelRuntimeError):
    """A tool call was refused or its handler failed; the state is unchanged."""

    code = "call_failed"


class ToolNotFound(CallFailed):
    code = "unknown_tool"


class ArgsInvalid(CallFailed):
    code = "invalid_args"


class HandlerFailed(CallFailed):
    """The handler threw, ran out of fuel/time/memory, or asked for an ungranted capability."""

    code = "handler_failed"

    def __init__(self, message: str, reason: str) -> None:
        super().__init__(message)
        self.reason = reason


class StateRejected(CallFailed):
    """The handler's new state does not match the panel's ``<Data>`` declarations."""

    code = "state_rejected"


class ViewEffectRejected(CallFailed):
    """A ``$view.*`` effect names no component, an unknown method or a bad value."""

    code = "view_effect_rejected"


def describe_failure(exc: SandboxError, handler: Handler | None = None) -> str:
    """A user-facing reason for a sandbox failure; handler lines become NXML lines."""
    if isinstance(exc, OutOfFuel):
        return f"it ran out of fuel (an endless loop?): {exc}"
    if isinstance(exc, WallTimeExceeded):
        return f"it ran out of time: {exc}"
    if isinstance(exc, MemoryLimitExceeded):
        return f"it ran out of memory: {exc}"
    if isinstance(exc, CapabilityDenied):
        return f"it reached for something it was not granted: {exc}"
    if isinstance(exc, GuestError):
        where = ""
        if exc.line is not None and handler is not None:
            where = f" at NXML line {handler.line + exc.line - 1}"
        return f"it threw {exc.name}: {exc.message}{where}"
    return str(exc) or type(exc).__name__
