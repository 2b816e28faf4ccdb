"""JSON Schemas of the wire formats, generated from the models (never hand-edited)."""

from __future__ import annotations

from typing import Any

from nexflow.panels.ast import NexusPanel
from nexflow.panels.render import RenderTree

SCHEMA_DIALECT = "https://json-schema.org/draft/2020-12/schema"


def _schema(model: type[NexusPanel] | type[RenderTree], id_: str) -> dict[str, Any]:
    schema = model.model_json_schema(mode="serialization")
    return {"$schema": SCHEMA_DIALECT, "$id": id_, **schema}


def panel_json_schema() -> dict[str, Any]:
    """Schema of ``NexusPanel.model_dump(mode="json")``: the NXML AST protocol."""
    return _schema(NexusPanel, "https://nexflow.dev/schemas/nxml-ast.json")


def render_json_schema() -> dict[str, Any]:
    """Schema of ``RenderTree.model_dump(mode="json")``: what renderers hydrate."""
    return _schema(RenderTree, "https://nexflow.dev/schemas/nxml-render.json")
