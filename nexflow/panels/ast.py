"""The NXML abstract syntax tree: the protocol every Nexflow panel component speaks.

A panel has three isolated namespaces: ``Data`` (typed :class:`State`), ``Logic``
(:class:`Tool` with :class:`Arg` and a JavaScript :class:`Handler`) and ``View``
(a tree of :class:`Component`). Component props are :class:`Prop` values split into
literal text and ``{expression}`` parts, so consumers never re-parse bindings.

Every node carries the 1-based ``line`` and ``column`` where it starts in the NXML
source. Models are frozen; ``model_dump(mode="json")`` is the wire format
documented in ``docs/protocol.md``.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, JsonValue

from nexflow.panels.errors import Diagnostic

StateType = Literal["number", "string", "boolean", "list", "object"]
STATE_TYPES: tuple[StateType, ...] = ("number", "string", "boolean", "list", "object")
CapabilityKind = Literal["http", "file", "clock"]


class Node(BaseModel):
    """Base of every AST node: frozen, strict about fields, positioned in the source."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    line: int = 0
    column: int = 0


class TextPart(BaseModel):
    """Literal text of a prop value (``{{`` and ``}}`` already unescaped)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    kind: Literal["text"] = "text"
    text: str


class ExprPart(BaseModel):
    """A ``{...}`` binding: a JavaScript expression and the state names it reads."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    kind: Literal["expr"] = "expr"
    expr: str
    refs: tuple[str, ...] = ()


Part = Annotated[TextPart | ExprPart, Field(discriminator="kind")]


class Prop(Node):
    """An attribute (or element body) of a component.

    ``value`` is the raw text. ``parts`` is the parsed template: a single
    :class:`ExprPart` for ``"{$state.x}"`` (the value keeps the expression's type),
    text and expressions mixed for ``"{$state.x}%"`` (the value is a string).
    """

    value: str
    parts: tuple[Part, ...] = ()

    @property
    def is_bound(self) -> bool:
        return any(p.kind == "expr" for p in self.parts)

    @property
    def is_whole_binding(self) -> bool:
        return len(self.parts) == 1 and self.parts[0].kind == "expr"

    @property
    def expressions(self) -> tuple[str, ...]:
        return tuple(p.expr for p in self.parts if isinstance(p, ExprPart))

    @property
    def refs(self) -> tuple[str, ...]:
        return tuple(r for p in self.parts if isinstance(p, ExprPart) for r in p.refs)


class Trigger(Node):
    """``trigger="tool"`` on a component plus its ``<Arg name=".." value=".."/>`` children."""

    tool: str
    args: dict[str, Prop] = Field(default_factory=dict)


class Component(Node):
    """A View element. ``type`` is the tag; the catalogue decides whether it is known.

    ``path`` is stable for a given document (``view/0/2``: third child of the first
    top-level element) and is the key shared by diagnostics and the render tree.
    """

    type: str
    path: str
    props: dict[str, Prop] = Field(default_factory=dict)
    trigger: Trigger | None = None
    children: tuple[Component, ...] = ()

    def walk(self) -> Iterator[Component]:
        yield self
        for child in self.children:
            yield from child.walk()


class State(Node):
    """A typed piece of panel data. ``default_raw`` is the attribute as written."""

    name: str
    type: StateType
    default: JsonValue = None
    default_raw: str | None = None
    description: str = ""


class Arg(Node):
    """A tool argument; optional unless ``required="true"``."""

    name: str
    type: StateType
    description: str = ""
    required: bool = False
    default: JsonValue = None
    default_raw: str | None = None


class Handler(Node):
    """JavaScript run in the sandbox; ``source`` is verbatim.

    ``line``/``column`` are where the source text starts, so JavaScript line ``n``
    is NXML line ``line + n - 1``.
    """

    source: str


class Tool(Node):
    """A Logic tool: callable by the user (Actions) and by the AI (MCP bridge)."""

    name: str
    description: str = ""
    dangerous: bool = False
    args: tuple[Arg, ...] = ()
    handler: Handler | None = None

    def arg(self, name: str) -> Arg | None:
        return next((a for a in self.args if a.name == name), None)


class Capability(Node):
    """A capability the panel asks for; the user still has to grant it.

    ``http``: ``target`` is a host name. ``file``: ``target`` is a workspace-relative
    path and ``mode`` is ``read`` or ``write``. ``clock``: no target.
    """

    kind: CapabilityKind
    target: str = ""
    mode: Literal["read", "write"] | None = None


class Data(Node):
    states: tuple[State, ...] = ()


class Logic(Node):
    tools: tuple[Tool, ...] = ()


class View(Node):
    children: tuple[Component, ...] = ()

    def walk(self) -> Iterator[Component]:
        for child in self.children:
            yield from child.walk()


class NexusPanel(Node):
    """The root of an NXML document.

    ``issues`` holds what the parser recovered from (elements in the wrong namespace,
    bad attribute values, ...); :func:`nexflow.panels.validate` reports them with
    its own findings, so a panel is only usable once ``validate`` has no errors.
    """

    id: str
    title: str
    version: str | None = None
    description: str | None = None
    capabilities: tuple[Capability, ...] = ()
    data: Data = Field(default_factory=Data)
    logic: Logic = Field(default_factory=Logic)
    view: View = Field(default_factory=View)
    issues: tuple[Diagnostic, ...] = ()

    def state(self, name: str) -> State | None:
        return next((s for s in self.data.states if s.name == name), None)

    def tool(self, name: str) -> Tool | None:
        return next((t for t in self.logic.tools if t.name == name), None)
