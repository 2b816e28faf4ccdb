"""The render tree: what the LayoutEngine produces and renderers consume.

The tree is laid out once per panel definition and keeps every binding
unresolved. Filling values is a separate, cheap step, so the same tree serves
every state version::

    tree = LayoutEngine().layout(panel)
    values = sandbox.evaluate_batch(tree.expressions(), state)   # {expr: value}
    snapshot = tree.with_values(values)                         # new RenderTree

Values are keyed by expression text: binding expressions are pure functions of
``$state``, so equal text means equal value and each is evaluated once.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, JsonValue

from nexflow.panels.ast import ExprPart, Part
from nexflow.panels.bindings import BindingSite
from nexflow.panels.errors import Diagnostic
from nexflow.panels.values import js_string

NodeKind = Literal["layout", "row", "component"]
_MISSING = object()


class RenderTrigger(BaseModel):
    """The tool a node runs and the arguments it passes (resolved or literal)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    tool: str
    args: dict[str, JsonValue] = Field(default_factory=dict)


class RenderNode(BaseModel):
    """One node of the render tree.

    ``kind`` is ``layout`` (a Layout or the View itself; its children are rows),
    ``row`` (children side by side) or ``component``. ``span`` is the width in
    twelfths of the parent row. ``props`` holds literal props coerced to their
    catalogue types, defaults filled in, and, after :meth:`RenderTree.with_values`,
    the resolved bindings. ``bindings`` maps a prop name (``args.<name>`` for
    trigger arguments) to its unresolved template; it survives resolution so a tree
    can be resolved again. ``unresolved`` lists props whose expressions had no value.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    key: str
    kind: NodeKind
    type: str
    span: int = 12
    props: dict[str, JsonValue] = Field(default_factory=dict)
    bindings: dict[str, tuple[Part, ...]] = Field(default_factory=dict)
    trigger: RenderTrigger | None = None
    children: tuple[RenderNode, ...] = ()
    unresolved: tuple[str, ...] = ()
    line: int = 0
    column: int = 0

    def walk(self) -> Iterator[RenderNode]:
        yield self
        for child in self.children:
            yield from child.walk()

    def _resolved(self, values: Mapping[str, JsonValue]) -> RenderNode:
        children = tuple(c._resolved(values) for c in self.children)
        if not self.bindings:
            return self.model_copy(update={"children": children}) if children else self
        props = dict(self.props)
        args = dict(self.trigger.args) if self.trigger else {}
        missing: list[str] = []
        for name, parts in self.bindings.items():
            value, ok = resolve_template(parts, values)
            if not ok:
                missing.append(name)
            if name.startswith("args."):
                args[name[5:]] = value
            else:
                props[name] = value
        update: dict[str, object] = {
            "props": props,
            "children": children,
            "unresolved": tuple(missing),
        }
        if self.trigger is not None:
            update["trigger"] = self.trigger.model_copy(update={"args": args})
        return self.model_copy(update=update)


def resolve_template(
    parts: tuple[Part, ...], values: Mapping[str, JsonValue]
) -> tuple[JsonValue, bool]:
    """A whole binding keeps the value's type; a mixed template becomes a string.

    Returns ``(value, complete)``; a missing expression resolves to ``None`` (or an
    empty string inside text) and ``complete`` is false.
    """
    if len(parts) == 1 and isinstance(parts[0], ExprPart):
        found = values.get(parts[0].expr, _MISSING)
        return (None, False) if found is _MISSING else (found, True)  # type: ignore[return-value]
    complete = True
    out: list[str] = []
    for part in parts:
        if isinstance(part, ExprPart):
            found = values.get(part.expr, _MISSING)
            complete = complete and found is not _MISSING
            out.append("" if found is _MISSING else js_string(found))
        else:
            out.append(part.text)
    return "".join(out), complete


class RenderTree(BaseModel):
    """A laid-out panel: the root View node plus the layout warnings."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    panel_id: str
    title: str
    root: RenderNode
    warnings: tuple[Diagnostic, ...] = ()

    def walk(self) -> Iterator[RenderNode]:
        return self.root.walk()

    def find(self, key: str) -> RenderNode | None:
        return next((n for n in self.walk() if n.key == key), None)

    def binding_sites(self) -> list[BindingSite]:
        """Every (node key, prop, expression), in document order."""
        return [
            BindingSite(node.key, prop, part.expr)
            for node in self.walk()
            for prop, parts in node.bindings.items()
            for part in parts
            if isinstance(part, ExprPart)
        ]

    def expressions(self) -> tuple[str, ...]:
        """Distinct binding expressions in document order: the batch to evaluate."""
        return tuple(dict.fromkeys(site.expression for site in self.binding_sites()))

    def with_values(self, values: Mapping[str, JsonValue]) -> RenderTree:
        """A copy with every binding resolved from ``values`` (keyed by expression)."""
        return self.model_copy(update={"root": self.root._resolved(values)})

    @property
    def unresolved(self) -> list[tuple[str, str]]:
        """``(node key, prop)`` pairs left without a value by the last resolution."""
        return [(n.key, p) for n in self.walk() for p in n.unresolved]
