"""Exceptions of ``nexflow.flows``.

:class:`FlowError` is the root; its ``message`` is safe to show to users (it never
carries a traceback or a third-party error's text). Subclasses:

- :class:`FlowInvalid`: a flow file failed validation; ``issues`` lists every problem
  found, each with file, line and column (1-based).
- :class:`ExprError`: an expression is malformed, uses something the safe evaluator
  refuses, or failed while evaluating (a missing value compared, a size cap hit).
- :class:`RunNotFound`: no such run *for this owner* (other owners' runs look the same).
- :class:`RunControlError`: the action does not fit the run's state (resume a run that
  is not paused, retry a run that did not fail, fork from a node that never ran).
- :class:`EngineUnavailable`: the durable engine could not start, or another engine
  already holds this process (DBOS is a process-wide singleton).
"""

from __future__ import annotations

from dataclasses import dataclass


class FlowError(Exception):
    """Root of the flows exception tree; ``message`` is user-safe."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


@dataclass(frozen=True, slots=True)
class FlowIssue:
    """One validation problem at ``file:line:column`` (1-based; 0 when unknown)."""

    file: str
    line: int
    column: int
    message: str

    def __str__(self) -> str:
        return f"{self.file}:{self.line}:{self.column}: {self.message}"


class FlowInvalid(FlowError):
    """A flow definition is invalid; ``issues`` holds every problem, in file order."""

    def __init__(self, issues: list[FlowIssue]) -> None:
        self.issues = sorted(issues, key=lambda i: (i.line, i.column, i.message))
        text = "\n".join(str(i) for i in self.issues)
        super().__init__(f"invalid flow ({len(self.issues)} problem(s)):\n{text}")


class ExprError(FlowError):
    """An expression was refused or failed while evaluating."""


class RunNotFound(FlowError):
    """No such run for this owner."""


class RunControlError(FlowError):
    """The requested action does not fit the run's current state."""


class EngineUnavailable(FlowError):
    """The durable engine cannot run (failed to start, or another engine is active)."""


class RunFailed(FlowError):
    """A run ended in failure (a node failed with no error branch, budget exceeded...).

    Raised inside the durable workflow, stored by the engine and re-read by ``status``;
    it must stay picklable (one positional ``message``)."""
