"""The component catalogue: which View elements exist and what props they take.

The catalogue is data. The parser, the validator, the LayoutEngine and the docs
generator (``python -m nexflow.panels.docgen``) all read it; adding a component is
adding an entry here, never a branch in code.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Literal

from pydantic import JsonValue

PropType = Literal[
    "string", "number", "integer", "boolean", "enum", "list", "object", "any", "tool"
]
LayoutClass = Literal["container", "compact", "action", "wide"]
"""How ``strategy="auto"`` places a component: a nested layout, shares a row with
other compact items (at most ``max_per_row``), joins a toolbar row of actions, or
takes the full width."""


@dataclass(frozen=True, slots=True)
class PropSpec:
    """One prop. ``bindable`` props accept ``{expr}``; ``expects_binding`` props
    look wrong with a constant (the LayoutEngine warns)."""

    name: str
    type: PropType
    description: str
    required: bool = False
    default: JsonValue = None
    bindable: bool = True
    choices: tuple[str, ...] = ()
    expects_binding: bool = False


@dataclass(frozen=True, slots=True)
class ComponentSpec:
    """One component. ``body_prop`` receives the element's text; with ``raw_body``
    that text is taken literally (no ``{}`` bindings), as code usually has braces."""

    name: str
    description: str
    layout: LayoutClass
    props: tuple[PropSpec, ...]
    example: str
    body_prop: str | None = None
    raw_body: bool = False
    children: bool = False
    prop_map: Mapping[str, PropSpec] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "prop_map", MappingProxyType({p.name: p for p in self.props}))

    @property
    def accepts_trigger(self) -> bool:
        return "trigger" in self.prop_map


class Catalogue:
    """An immutable set of component specs, looked up by tag name."""

    def __init__(self, specs: tuple[ComponentSpec, ...]) -> None:
        self._specs: Mapping[str, ComponentSpec] = MappingProxyType({s.name: s for s in specs})

    def get(self, name: str) -> ComponentSpec | None:
        return self._specs.get(name)

    def names(self) -> tuple[str, ...]:
        return tuple(self._specs)

    def __iter__(self) -> Iterator[ComponentSpec]:
        return iter(self._specs.values())

    def __contains__(self, name: object) -> bool:
        return name in self._specs


_ID = PropSpec(
    "id", "string", "Name used by `$view.*` calls to address this component.", bindable=False
)
_TRIGGER = PropSpec(
    "trigger",
    "tool",
    "Logic tool to run; args come from `<Arg name value/>` children.",
    bindable=False,
)
_HEIGHT = PropSpec("height", "integer", "Height in pixels.", default=240)
_ARG = PropSpec(
    "arg",
    "string",
    "Name of the tool argument that receives the value.",
    default="value",
    bindable=False,
)

LAYOUT = ComponentSpec(
    "Layout",
    "Container that arranges its children. `auto` groups metrics and badges into rows, "
    "actions into a toolbar and puts streams, tables, charts, diagrams and code full width.",
    "container",
    (
        PropSpec(
            "strategy",
            "enum",
            "How children are arranged.",
            default="auto",
            bindable=False,
            choices=("auto", "row", "column", "grid"),
        ),
        PropSpec(
            "columns",
            "integer",
            "Cells per row for `grid` (capped by the engine).",
            default=2,
            bindable=False,
        ),
        PropSpec("gap", "integer", "Space between children in pixels.", default=12, bindable=False),
        PropSpec("title", "string", "Optional heading shown above the children."),
        _ID,
    ),
    '<Layout strategy="grid" columns="3">...</Layout>',
    children=True,
)

CATALOGUE = Catalogue(
    (
        LAYOUT,
        ComponentSpec(
            "Metric",
            "A single number with a label, an optional unit and a trend arrow.",
            "compact",
            (
                PropSpec("label", "string", "What is measured.", required=True),
                PropSpec("value", "any", "The value shown.", required=True, expects_binding=True),
                PropSpec("unit", "string", "Unit appended to the value."),
                PropSpec("trend", "enum", "Trend arrow.", choices=("up", "down", "flat")),
                _ID,
            ),
            '<Metric label="CPU" value="{$state.cpu_load}%" />',
        ),
        ComponentSpec(
            "StatusBadge",
            "A coloured badge for a status word.",
            "compact",
            (
                PropSpec("label", "string", "What the status is about.", required=True),
                PropSpec(
                    "value", "string", "The status text.", required=True, expects_binding=True
                ),
                PropSpec(
                    "tone",
                    "enum",
                    "Colour; `auto` derives it from the value.",
                    default="auto",
                    choices=("auto", "ok", "warn", "error", "info"),
                ),
                _ID,
            ),
            '<StatusBadge label="System" value="{$state.status}" />',
        ),
        ComponentSpec(
            "Action",
            "A button that runs a Logic tool.",
            "action",
            (
                PropSpec("label", "string", "Button text.", required=True),
                PropSpec("trigger", "tool", _TRIGGER.description, required=True, bindable=False),
                PropSpec(
                    "variant",
                    "enum",
                    "Look of the button.",
                    default="default",
                    choices=("default", "primary", "danger"),
                ),
                PropSpec(
                    "confirm", "string", "Question the user must confirm before the tool runs."
                ),
                PropSpec("disabled", "boolean", "Greys the button out.", default=False),
                _ID,
            ),
            '<Action label="Restart" trigger="restart_node" variant="danger" />',
        ),
        ComponentSpec(
            "LogStream",
            "Scrolling log lines (strings or objects with `level`/`message`).",
            "wide",
            (
                PropSpec("data", "list", "The log lines.", required=True, expects_binding=True),
                _HEIGHT,
                PropSpec("filter", "string", "Only lines containing this text or at this level."),
                PropSpec("max_lines", "integer", "Lines kept on screen.", default=500),
                _ID,
            ),
            '<LogStream data="{$state.logs}" height="200" />',
        ),
        ComponentSpec(
            "Text",
            "A line or paragraph of plain text; the element body is the text.",
            "wide",
            (
                PropSpec("text", "string", "The text.", required=True),
                PropSpec(
                    "tone",
                    "enum",
                    "Emphasis.",
                    default="default",
                    choices=("default", "muted", "strong", "heading"),
                ),
                _ID,
            ),
            '<Text tone="heading">Today</Text>',
            body_prop="text",
        ),
        ComponentSpec(
            "Markdown",
            "Rendered Markdown; the element body is the source.",
            "wide",
            (PropSpec("content", "string", "Markdown source.", required=True), _ID),
            "<Markdown>**{$state.count}** open items</Markdown>",
            body_prop="content",
        ),
        ComponentSpec(
            "Table",
            "Rows of objects as a table.",
            "wide",
            (
                PropSpec(
                    "data", "list", "The rows (objects).", required=True, expects_binding=True
                ),
                PropSpec(
                    "columns",
                    "string",
                    "Comma-separated keys to show; default: keys of the first row.",
                ),
                _HEIGHT,
                _ID,
            ),
            '<Table data="{$state.jobs}" columns="name,status,duration" />',
        ),
        ComponentSpec(
            "List",
            "A list of items; with `check_key` the items get checkboxes.",
            "wide",
            (
                PropSpec(
                    "items",
                    "list",
                    "The items (strings or objects).",
                    required=True,
                    expects_binding=True,
                ),
                PropSpec("label_key", "string", "Key shown for object items.", default="text"),
                PropSpec("check_key", "string", "Boolean key rendered as a checkbox."),
                PropSpec("ordered", "boolean", "Numbered list.", default=False),
                PropSpec(
                    "trigger",
                    "tool",
                    "Tool run when an item is clicked, with the item index.",
                    bindable=False,
                ),
                PropSpec(
                    "arg",
                    "string",
                    "Argument that receives the item index.",
                    default="index",
                    bindable=False,
                ),
                _ID,
            ),
            '<List items="{$state.todos}" check_key="done" trigger="toggle" />',
        ),
        ComponentSpec(
            "Input",
            "A text field; submitting it runs `trigger` with the text.",
            "compact",
            (
                PropSpec("label", "string", "Field label."),
                PropSpec("value", "string", "Current text.", default=""),
                PropSpec("placeholder", "string", "Greyed hint when empty."),
                PropSpec("multiline", "boolean", "Text area instead of a line.", default=False),
                _TRIGGER,
                _ARG,
                _ID,
            ),
            '<Input placeholder="New task" trigger="add_todo" arg="text" />',
        ),
        ComponentSpec(
            "Toggle",
            "An on/off switch; flipping it runs `trigger` with the new value.",
            "compact",
            (
                PropSpec("label", "string", "Switch label.", required=True),
                PropSpec(
                    "value", "boolean", "Current position.", required=True, expects_binding=True
                ),
                _TRIGGER,
                _ARG,
                _ID,
            ),
            '<Toggle label="Maintenance" value="{$state.maintenance}" trigger="set_maintenance" />',
        ),
        ComponentSpec(
            "Chart",
            "A line or bar chart from a list of numbers or objects.",
            "wide",
            (
                PropSpec(
                    "data",
                    "list",
                    "Numbers, or objects with the `x`/`y` keys.",
                    required=True,
                    expects_binding=True,
                ),
                PropSpec("kind", "enum", "Chart type.", default="line", choices=("line", "bar")),
                PropSpec("x", "string", "Key for the x axis; default: the item index."),
                PropSpec(
                    "y", "string", "Comma-separated keys for the series; default: the item itself."
                ),
                PropSpec("title", "string", "Caption."),
                _HEIGHT,
                _ID,
            ),
            '<Chart kind="bar" data="{$state.durations}" x="job" y="seconds" />',
        ),
        ComponentSpec(
            "Code",
            "Source code with highlighting; the element body is taken literally.",
            "wide",
            (
                PropSpec("code", "string", "The code.", required=True),
                PropSpec("language", "string", "Highlighting language.", default="text"),
                _HEIGHT,
                _ID,
            ),
            '<Code language="python">print("hi")</Code>',
            body_prop="code",
            raw_body=True,
        ),
        ComponentSpec(
            "Diagram",
            "Nodes and edges drawn as a flowchart.",
            "wide",
            (
                PropSpec(
                    "nodes",
                    "list",
                    "Objects `{id, label, shape?}`.",
                    required=True,
                    expects_binding=True,
                ),
                PropSpec(
                    "edges",
                    "list",
                    "Objects `{from, to, label?}`.",
                    required=True,
                    expects_binding=True,
                ),
                PropSpec(
                    "direction",
                    "enum",
                    "Top-to-bottom or left-to-right.",
                    default="TB",
                    choices=("TB", "LR"),
                ),
                PropSpec(
                    "trigger",
                    "tool",
                    "Tool run when a node is clicked, with the node id.",
                    bindable=False,
                ),
                PropSpec(
                    "arg",
                    "string",
                    "Argument that receives the node id.",
                    default="id",
                    bindable=False,
                ),
                PropSpec("height", "integer", "Height in pixels.", default=320),
                _ID,
            ),
            '<Diagram nodes="{$state.nodes}" edges="{$state.edges}" direction="LR" />',
        ),
    )
)
"""The default catalogue."""
