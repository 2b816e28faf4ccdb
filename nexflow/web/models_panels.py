"""Response models of the panel routes (:mod:`nexflow.web.routes_panels`,
``docs/panels.md``). State, props and effects are JSON chosen by the panel, so they are
``JsonValue``; the render tree and the chat snapshot are the runtime's own models."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, Field, JsonValue

from nexflow.bus.events import PanelSnapshotOut
from nexflow.panels.errors import Diagnostic
from nexflow.panels.render import RenderTree
from nexflow.panels.runtime.versions import CallOutcome, TriggeredBy, VersionKind
from nexflow.web.models_common import ErrorBody, error

JsonObject = dict[str, JsonValue]


class PanelTemplate(BaseModel):
    name: str = Field(description='Create a panel from it with {"template": name}')


class PanelSummary(BaseModel):
    """A panel instance (list items, create, rollback)."""

    id: str
    title: str
    template: str
    version: int = Field(description="The current version; 1 is the initial state")
    workspace: str = Field(description="The owner's workspace it belongs to")
    state: JsonObject
    tools: list[str] = Field(description="The names of its Logic tools")
    created_at: float = Field(description="Epoch seconds")
    updated_at: float


class Capabilities(BaseModel):
    declared: list[str] = Field(description="The grants the panel's NXML asks for")
    granted: list[str] = Field(description="Granted by the config and to this instance")
    effective: list[str] = Field(description="http:<host> and file:<path> it may reach")


class PanelDetail(PanelSummary):
    """A panel with its view props, render tree and capabilities."""

    view: dict[str, JsonObject] = Field(description="View props per node key")
    render: RenderTree = Field(description="The laid-out tree, bindings resolved")
    binding_errors: list[str]
    capabilities: Capabilities


class OutcomeError(BaseModel):
    code: str | None
    message: str | None


class ToolOutcome(BaseModel):
    """The answer to a Logic tool call; ``ok: false`` changed nothing."""

    ok: bool
    panel: str = Field(description="The panel id")
    tool: str
    state: JsonObject = Field(description="The state after the call (unchanged if not ok)")
    effects: list[JsonObject]
    version: int
    result: JsonValue = Field(description="What the handler returned")
    logs: list[str]
    flows: list[JsonObject] = Field(
        description="One answer per run_flow the handler asked for: flow, ok, run_id or error"
    )
    error: OutcomeError | None = Field(description="null when ok")

    @classmethod
    def of(cls, outcome: CallOutcome) -> ToolOutcome:
        return cls.model_validate(outcome.to_json())


class Pressed(BaseModel):
    outcome: ToolOutcome
    snapshot: PanelSnapshotOut


class PanelVersion(BaseModel):
    """One committed change of a panel's state or view."""

    version: int
    kind: VersionKind
    tool: str | None
    args: JsonObject
    state_before: JsonObject
    state_after: JsonObject
    view_before: dict[str, JsonObject]
    view_after: dict[str, JsonObject]
    effects: list[JsonObject]
    triggered_by: TriggeredBy
    user_id: str | None
    created_at: float


class PanelErrorBody(ErrorBody):
    """A runtime error; an invalid panel also lists its diagnostics."""

    diagnostics: list[Diagnostic] | None = Field(None, description="panel_invalid only")


NOT_FOUND = error("No such panel of the caller's (another user's is the same)", PanelErrorBody)
UNAVAILABLE = error("Panels are not enabled, or the sandbox is unavailable", PanelErrorBody)
INVALID = error("A body, panel or grant that is not valid", PanelErrorBody)
PANEL_ERRORS: dict[int | str, dict[str, Any]] = {404: NOT_FOUND, 422: INVALID, 503: UNAVAILABLE}
