"""NXML panels: parse, validate and lay out small declarative UIs.

Pipeline::

    panel = parse(xml)                   # NexusPanel (frozen AST, positions kept)
    diagnostics = validate(panel)        # [Diagnostic]; errors mean "do not run"
    tree = LayoutEngine().layout(panel)  # RenderTree with unresolved bindings
    values = {expr: value for expr in tree.expressions()}  # evaluated by the sandbox
    snapshot = tree.with_values(values)

``load(xml)`` does parse + validate and raises on errors. Handlers and binding
expressions are JavaScript evaluated by :mod:`nexflow.sandbox`; this package never
runs them.

Exceptions (each carries ``diagnostics``: line, column, code, message, hint)::

    PanelError                  base of everything raised here
    ├── NXMLSyntaxError         not well-formed XML, or the root is not <NexusPanel>
    ├── NXMLLimitError          too large / deep / many elements; DTDs and entities
    └── NXMLValidationError     parsed, but validate() found errors (raised by load())
"""

from __future__ import annotations

from nexflow.panels.ast import (
    Arg,
    Capability,
    Component,
    Data,
    ExprPart,
    Handler,
    Logic,
    NexusPanel,
    Prop,
    State,
    TextPart,
    Tool,
    Trigger,
    View,
)
from nexflow.panels.bindings import BindingSite, binding_sites, split_template, state_refs
from nexflow.panels.components import CATALOGUE, Catalogue, ComponentSpec, PropSpec
from nexflow.panels.errors import (
    Diagnostic,
    NXMLLimitError,
    NXMLSyntaxError,
    NXMLValidationError,
    PanelError,
)
from nexflow.panels.layout import LayoutEngine, LayoutOptions
from nexflow.panels.parser import parse
from nexflow.panels.render import RenderNode, RenderTree, RenderTrigger
from nexflow.panels.schema import panel_json_schema, render_json_schema
from nexflow.panels.validator import load, validate
from nexflow.panels.xmlread import ParseLimits

__all__ = [
    "CATALOGUE",
    "Arg",
    "BindingSite",
    "Capability",
    "Catalogue",
    "Component",
    "ComponentSpec",
    "Data",
    "Diagnostic",
    "ExprPart",
    "Handler",
    "LayoutEngine",
    "LayoutOptions",
    "Logic",
    "NXMLLimitError",
    "NXMLSyntaxError",
    "NXMLValidationError",
    "NexusPanel",
    "PanelError",
    "ParseLimits",
    "Prop",
    "PropSpec",
    "RenderNode",
    "RenderTree",
    "RenderTrigger",
    "State",
    "TextPart",
    "Tool",
    "Trigger",
    "View",
    "binding_sites",
    "load",
    "panel_json_schema",
    "parse",
    "render_json_schema",
    "split_template",
    "state_refs",
    "validate",
]
