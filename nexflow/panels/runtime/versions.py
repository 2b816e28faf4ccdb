"""Records of panel instances and of every change to their state (the StateObject).

Each committed change is a :class:`VersionRecord`: the tool and its arguments,
the state and view props before and after, the effects, who triggered it
(``user``: an Action or the HTTP API, ``ai``: the model through a tool call,
``system``: creation and rollback) and when. Version 1 is the initial state; a
rollback is itself a new version whose ``after`` is an older version's ``after``,
so history is never rewritten.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Literal

from nexflow.panels.runtime.errors import WorkspaceNameInvalid
from nexflow.sandbox import JSONObject, JSONValue

TriggeredBy = Literal["user", "ai", "system"]
VersionKind = Literal["create", "tool", "rollback", "feed", "patch", "restore"]
# A workspace name (the same rule as nexflow/workspace/layout.py and
# workspaces.default_name): it is a directory name under the owner's workspaces.
_WORKSPACE = re.compile(r"[a-z0-9][a-z0-9_-]{0,31}")


def check_workspace(name: str) -> str:
    """``name`` if it can name a workspace, else :class:`WorkspaceNameInvalid`."""
    if not _WORKSPACE.fullmatch(name):
        raise WorkspaceNameInvalid(
            f"{name[:40]!r} is not a workspace name: use 1-32 lowercase letters, digits, "
            "'-' or '_', starting with a letter or digit"
        )
    return name


@dataclass(frozen=True, slots=True)
class PanelRecord:
    """A panel instance as stored: its NXML, current state and view props, version, and
    the workspace of its owner it belongs to (chosen at creation, ``default`` for panels
    older than migration 7)."""

    id: str
    template: str
    owner: str
    title: str
    nxml: str
    state: JSONObject
    view: dict[str, JSONObject]
    version: int
    grants: tuple[str, ...]
    created_at: float
    updated_at: float
    workspace: str


@dataclass(frozen=True, slots=True)
class VersionRecord:
    panel_id: str
    version: int
    kind: VersionKind
    tool: str | None
    args: JSONObject
    state_before: JSONObject
    state_after: JSONObject
    view_before: dict[str, JSONObject]
    view_after: dict[str, JSONObject]
    effects: list[JSONObject]
    triggered_by: TriggeredBy
    user_id: str | None
    created_at: float

    def to_json(self) -> JSONObject:
        return {
            "version": self.version,
            "kind": self.kind,
            "tool": self.tool,
            "args": self.args,
            "state_before": self.state_before,
            "state_after": self.state_after,
            "view_before": dict(self.view_before),
            "view_after": dict(self.view_after),
            "effects": list(self.effects),
            "triggered_by": self.triggered_by,
            "user_id": self.user_id,
            "created_at": self.created_at,
        }


@dataclass(frozen=True, slots=True)
class Change:
    """What one commit does to an instance (the store turns it into a version)."""

    kind: VersionKind
    state: JSONObject
    view: dict[str, JSONObject]
    tool: str | None = None
    args: JSONObject | None = None
    effects: tuple[JSONObject, ...] = ()
    triggered_by: TriggeredBy = "system"
    user_id: str | None = None
    nxml: str | None = None  # a new definition for the instance (accepted patch, restore)
    event_key: str | None = None  # the press's event id: applied once per key (per panel)


@dataclass(frozen=True, slots=True)
class CallOutcome:
    """The answer to one tool call: ``ok`` with the new state and effects, or
    ``ok=False`` with ``error_code``/``error`` and the unchanged state."""

    ok: bool
    panel_id: str
    tool: str
    state: JSONObject
    effects: tuple[JSONObject, ...] = ()
    version: int = 0
    result: JSONValue = None
    logs: tuple[str, ...] = ()
    error_code: str | None = None
    error: str | None = None
    # one answer per ``$emit('run_flow', ...)``: {flow, ok, run_id | error, message}
    flows: tuple[JSONObject, ...] = ()

    def to_json(self) -> JSONObject:
        return {
            "ok": self.ok,
            "panel": self.panel_id,
            "tool": self.tool,
            "state": self.state,
            "effects": list(self.effects),
            "version": self.version,
            "result": self.result,
            "logs": list(self.logs),
            "flows": list(self.flows),
            "error": {"code": self.error_code, "message": self.error} if not self.ok else None,
        }
