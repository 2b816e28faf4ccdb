"""Exceptions raised by the sandbox (the tree is documented in ``nexflow.sandbox``)."""

from __future__ import annotations


class SandboxError(Exception):
    """Base class: a sandboxed call failed and nothing it did may be applied."""


class GuestNotBuilt(SandboxError):
    """The wasm guest has not been built; the message names the command that builds it."""


class OutOfFuel(SandboxError):
    """The guest executed more instructions than ``SandboxLimits.fuel`` allows."""


class WallTimeExceeded(SandboxError):
    """The guest ran longer than ``SandboxLimits.wall_time_ms``."""


class MemoryLimitExceeded(SandboxError):
    """The guest needed more memory than ``SandboxLimits.memory_bytes`` allows."""


class GuestError(SandboxError):
    """The JavaScript code threw (or failed to compile).

    ``name`` is the JS error class (``TypeError``, ``SyntaxError``...), ``message``
    its message, ``line`` the 1-based line in the handler source when known,
    ``logs`` what the script printed with ``console.log`` before it failed.
    """

    def __init__(
        self, name: str, message: str, line: int | None = None, logs: tuple[str, ...] = ()
    ) -> None:
        self.name = name
        self.message = message
        self.line = line
        self.logs = logs
        where = f" (line {line})" if line is not None else ""
        super().__init__(f"{name}: {message}{where}")


class CapabilityDenied(SandboxError):
    """The guest asked for a capability (file, host) that was not granted."""


class OutputInvalid(SandboxError):
    """The guest's result was too large or not the shape the host expects."""
