"""The LayoutEngine: View tree -> :class:`RenderTree`, with warnings for odd views.

Widths are twelfths of a row. ``strategy="auto"`` walks the children in order:
compact components (Metric, StatusBadge, Input, Toggle) share a row, at most
``max_per_row`` of them and never wider than half a row; consecutive Actions form
a toolbar row; everything else (streams, tables, charts, diagrams, code, text,
nested Layouts) gets a full-width row. ``row`` puts children side by side
(wrapping after ``max_per_row``), ``column`` stacks them, ``grid`` fills
``columns`` cells per row. The View itself is an implicit ``auto`` Layout.
"""

from __future__ import annotations

from dataclasses import dataclass

from pydantic import JsonValue

from nexflow.panels.ast import Component, NexusPanel, Node, Part, Prop
from nexflow.panels.components import (
    CATALOGUE,
    Catalogue,
    ComponentSpec,
    LayoutClass,
    PropSpec,
)
from nexflow.panels.errors import Diagnostic, warning
from nexflow.panels.render import RenderNode, RenderTree, RenderTrigger
from nexflow.panels.values import coerce, coerce_prop


@dataclass(frozen=True, slots=True)
class LayoutOptions:
    """Knobs of the engine; the defaults keep panels readable in a chat-sized card."""

    max_per_row: int = 4
    max_actions: int = 6
    max_nesting: int = 3


class LayoutEngine:
    """Lays out a validated panel. Stateless; one instance can serve every panel."""

    def __init__(
        self, catalogue: Catalogue = CATALOGUE, options: LayoutOptions | None = None
    ) -> None:
        self._catalogue = catalogue
        self._options = options or LayoutOptions()

    def layout(self, panel: NexusPanel) -> RenderTree:
        run = _Run(self._catalogue, self._options, panel)
        view = panel.view
        root = run.container("view", "View", "auto", {}, view.children, at=(view.line, view.column))
        run.check_actions()
        return RenderTree(
            panel_id=panel.id, title=panel.title, root=root, warnings=tuple(run.warnings)
        )


class _Run:
    def __init__(self, catalogue: Catalogue, options: LayoutOptions, panel: NexusPanel) -> None:
        self.catalogue = catalogue
        self.options = options
        self.panel = panel
        self.warnings: list[Diagnostic] = []
        self.actions: list[Component] = []
        self.depth = 0

    def warn(self, code: str, message: str, at: Node | tuple[int, int], hint: str) -> None:
        line, col = (at.line, at.column) if isinstance(at, Node) else at
        self.warnings.append(warning(code, message, line, col, hint))

    def layout_class(self, c: Component) -> LayoutClass:
        spec = self.catalogue.get(c.type)
        return spec.layout if spec is not None else "wide"

    def container(
        self,
        key: str,
        type_: str,
        strategy: str,
        props: dict[str, JsonValue],
        children: tuple[Component, ...],
        *,
        at: tuple[int, int],
    ) -> RenderNode:
        if not children:
            self.warn(
                "layout-empty",
                f"<{type_}> has nothing to show",
                at,
                "add components, or remove the empty element",
            )
        self.depth += 1
        if self.depth == self.options.max_nesting + 1:
            self.warn(
                "layout-too-deep",
                f"Layouts nested more than {self.options.max_nesting} deep",
                at,
                'flatten: strategy="auto" already arranges rows',
            )
        groups = self.arrange(strategy, props, children, at)
        self.depth -= 1
        rows = tuple(
            RenderNode(key=f"{key}#row{i}", kind="row", type="Row", children=cells)
            for i, cells in enumerate(groups)
        )
        return RenderNode(
            key=key, kind="layout", type=type_, props=props, children=rows, line=at[0], column=at[1]
        )

    def arrange(
        self,
        strategy: str,
        props: dict[str, JsonValue],
        children: tuple[Component, ...],
        at: tuple[int, int],
    ) -> list[tuple[RenderNode, ...]]:
        per_row = self.options.max_per_row
        if strategy == "column":
            return [(self.node(c, 12),) for c in children]
        if strategy == "grid":
            columns = props.get("columns", 2)
            wanted = columns if isinstance(columns, int) and columns > 0 else 2
            cols = min(wanted, per_row)
            if wanted > per_row:
                self.warn(
                    "layout-capped",
                    f"grid of {wanted} columns capped at {cols}",
                    at,
                    f'use columns="{cols}" or fewer; narrow cells are unreadable',
                )
            return [
                tuple(self.node(c, 12 // cols) for c in children[i : i + cols])
                for i in range(0, len(children), cols)
            ]
        if strategy == "row":
            if len(children) > per_row:
                self.warn(
                    "layout-wrapped",
                    f"{len(children)} items in one row wrap after {per_row}",
                    at,
                    'use strategy="auto" or a grid',
                )
            wide = [c for c in children if self.layout_class(c) in ("wide", "container")]
            if wide and len(children) > 1:
                self.warn(
                    "layout-squeezed",
                    f"<{wide[0].type}> needs the full width but shares a row",
                    wide[0],
                    'use strategy="auto" or "column"',
                )
            chunks = [children[i : i + per_row] for i in range(0, len(children), per_row)]
            return [tuple(self.node(c, 12 // len(chunk)) for c in chunk) for chunk in chunks]
        return self.auto(children)

    def auto(self, children: tuple[Component, ...]) -> list[tuple[RenderNode, ...]]:
        rows: list[tuple[RenderNode, ...]] = []
        pending: list[Component] = []
        pending_class: LayoutClass | None = None

        def flush() -> None:
            nonlocal pending, pending_class
            if pending:
                span = (
                    12 // self.options.max_per_row
                    if pending_class == "action"
                    else (min(6, 12 // len(pending)))
                )
                rows.append(tuple(self.node(c, span) for c in pending))
            pending, pending_class = [], None

        for child in children:
            cls = self.layout_class(child)
            if cls in ("compact", "action"):
                if pending_class != cls or len(pending) == self.options.max_per_row:
                    flush()
                pending.append(child)
                pending_class = cls
            else:
                flush()
                rows.append((self.node(child, 12),))
        flush()
        return rows

    def node(self, c: Component, span: int) -> RenderNode:
        spec = self.catalogue.get(c.type)
        props, bindings = self.props(c, spec)
        if c.type == "Layout":
            strategy = props.get("strategy", "auto")
            if strategy != "grid":
                props.pop("columns", None)
            if "columns" in c.props and strategy != "grid":
                self.warn(
                    "layout-ignored-prop",
                    'columns only applies to strategy="grid"',
                    (c.props["columns"].line, c.props["columns"].column),
                    'remove columns or use strategy="grid"',
                )
            box = self.container(
                c.path, "Layout", str(strategy), props, c.children, at=(c.line, c.column)
            )
            return box.model_copy(update={"span": span, "bindings": bindings})
        trigger = None
        if c.trigger is not None:
            if c.type == "Action":
                self.actions.append(c)
            trigger, arg_bindings = self.trigger(c)
            bindings.update(arg_bindings)
        if spec is not None:
            self.check_unbound(c, spec)
        return RenderNode(
            key=c.path,
            kind="component",
            type=c.type,
            span=span,
            props=props,
            bindings=bindings,
            trigger=trigger,
            line=c.line,
            column=c.column,
        )

    def props(
        self, c: Component, spec: ComponentSpec | None
    ) -> tuple[dict[str, JsonValue], dict[str, tuple[Part, ...]]]:
        props: dict[str, JsonValue] = {}
        bindings: dict[str, tuple[Part, ...]] = {}
        if spec is not None:
            props = {p.name: p.default for p in spec.props if p.default is not None}
        for name, prop in c.props.items():
            if prop.is_bound:
                bindings[name] = prop.parts
                props.pop(name, None)
                continue
            pspec = spec.prop_map.get(name) if spec is not None else None
            props[name] = _literal(prop, pspec.type if pspec else "string", pspec)
        return props, bindings

    def trigger(self, c: Component) -> tuple[RenderTrigger, dict[str, tuple[Part, ...]]]:
        assert c.trigger is not None
        tool = self.panel.tool(c.trigger.tool)
        args: dict[str, JsonValue] = {}
        bindings: dict[str, tuple[Part, ...]] = {}
        for name, prop in c.trigger.args.items():
            if prop.is_bound:
                bindings[f"args.{name}"] = prop.parts
                continue
            arg = tool.arg(name) if tool is not None else None
            args[name] = _literal(prop, arg.type if arg else "string", None)
        return RenderTrigger(tool=c.trigger.tool, args=args), bindings

    def check_unbound(self, c: Component, spec: ComponentSpec) -> None:
        for p in spec.props:
            prop = c.props.get(p.name)
            if p.expects_binding and prop is not None and not prop.is_bound:
                self.warn(
                    "layout-unbound",
                    f"<{c.type}> {p.name} is a constant",
                    prop,
                    f'bind it to state, e.g. {p.name}="{{$state.{p.name}}}"',
                )

    def check_actions(self) -> None:
        limit = self.options.max_actions
        if len(self.actions) > limit:
            self.warn(
                "layout-too-many-actions",
                f"{len(self.actions)} buttons; more than {limit} crowd the panel",
                self.actions[limit],
                "keep the main actions as buttons; the AI can still call every tool",
            )


def _literal(prop: Prop, type_: str, spec: PropSpec | None) -> JsonValue:
    try:
        return coerce_prop(spec, prop.value) if spec is not None else coerce(type_, prop.value)
    except ValueError:
        return prop.value  # the validator reports it; render the text as written
