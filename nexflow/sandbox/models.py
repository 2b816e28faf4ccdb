"""Typed values that cross the sandbox boundary: limits, capabilities, outcomes."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal, TypeAlias

JSONValue: TypeAlias = "bool | int | float | str | list[JSONValue] | dict[str, JSONValue] | None"
JSONObject: TypeAlias = dict[str, JSONValue]

MiB = 1024 * 1024


@dataclass(frozen=True, slots=True)
class SandboxLimits:
    """Per-call limits; configurable per panel.

    ``fuel`` counts wasm operators (measured ~5-10 per nanosecond, so the
    default is roughly 0.1-0.2 s of pure compute; a QuickJS loop iteration with
    a call costs ~1000); ``memory_bytes`` caps the guest's
    linear memory (the JS heap gets what the runtime image and output leave);
    ``wall_time_ms`` is enforced with epoch interruption at 10 ms granularity;
    ``max_output_bytes`` caps the result JSON (new state + effects + logs).
    """

    fuel: int = 1_000_000_000
    memory_bytes: int = 64 * MiB
    wall_time_ms: int = 1_000
    max_output_bytes: int = 2 * MiB

    def __post_init__(self) -> None:
        if self.fuel <= 0:
            raise ValueError("SandboxLimits.fuel must be positive")
        if self.memory_bytes < 8 * MiB:
            raise ValueError("SandboxLimits.memory_bytes must be at least 8 MiB")
        if self.memory_bytes >= 2**31:
            raise ValueError("SandboxLimits.memory_bytes must be below 2 GiB (wasm32)")
        if self.wall_time_ms <= 0:
            raise ValueError("SandboxLimits.wall_time_ms must be positive")
        if self.max_output_bytes <= 0:
            raise ValueError("SandboxLimits.max_output_bytes must be positive")


@dataclass(frozen=True, slots=True)
class Capabilities:
    """What a guest may reach beyond its own memory. The default grants nothing.

    ``http_hosts``: host names ``$http.get(url)`` may fetch from (exact,
    case-insensitive; redirects are not followed). ``read_root`` plus
    ``read_paths``: files ``$fs.read(path)`` may read, as paths relative to the
    root; an entry ending in ``/`` grants everything below that directory.
    Symlinks that leave the root are refused.
    """

    http_hosts: frozenset[str] = frozenset()
    read_root: Path | None = None
    read_paths: frozenset[str] = frozenset()
    max_read_bytes: int = 1 * MiB
    max_host_calls: int = 32
    http_timeout_s: float = 5.0


@dataclass(frozen=True, slots=True)
class EmitEffect:
    """``$emit(event, payload)``: an event for the panel host (toast, notify...)."""

    event: str
    payload: JSONValue
    kind: Literal["emit"] = field(default="emit", init=False)

    def to_json(self) -> JSONObject:
        return {"kind": self.kind, "event": self.event, "payload": self.payload}


@dataclass(frozen=True, slots=True)
class ViewEffect:
    """``$view.Component.method(...args)`` (``component`` set) or ``$view.method(...)``."""

    method: str
    args: tuple[JSONValue, ...]
    component: str | None = None
    kind: Literal["view"] = field(default="view", init=False)

    def to_json(self) -> JSONObject:
        return {
            "kind": self.kind,
            "component": self.component,
            "method": self.method,
            "args": list(self.args),
        }


Effect: TypeAlias = EmitEffect | ViewEffect


@dataclass(frozen=True, slots=True)
class HandlerOutcome:
    """Everything a successful handler produced, in order. Nothing is applied yet:
    the caller validates ``state`` against the panel's Data and applies it and
    the effects together, or not at all."""

    state: JSONObject
    effects: tuple[Effect, ...]
    logs: tuple[str, ...]
    result: JSONValue
    fuel_used: int


@dataclass(frozen=True, slots=True)
class EvalResult:
    """One binding expression's value, or the error it raised."""

    ok: bool
    value: JSONValue = None
    error: str | None = None
