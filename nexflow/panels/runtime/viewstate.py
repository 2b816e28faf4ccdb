"""Per-instance view props: what ``$view.*`` effects change and the render shows.

A panel instance keeps ``view``: ``{node key: {prop: value}}``, overrides laid
over the render tree after bindings are resolved (an override beats a binding).
They are part of the instance's versioned state, so a rollback restores them.

Methods (``$view.method(target, ...args)`` or ``$view.Target.method(...args)``)::

    setFilter(text)      the component's ``filter`` prop (LogStream); null clears it
    clearFilter()        drops the ``filter`` override
    setProp(name, value) any catalogue prop except id/trigger/arg; null clears it
    reset()              drops every override of the component

A target names components, tried in this order (the first tier that matches
wins): the ``id`` prop, the render key (``view/0/3``), the component type
(``LogStream``: every LogStream), the state a component binds (``'logs'``: the
components whose bindings read ``$state.logs``). For ``setFilter``/``setProp``
only components that have the prop count. No match rejects the whole run.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence

from nexflow.panels.components import CATALOGUE, Catalogue, PropSpec
from nexflow.panels.render import RenderNode, RenderTree
from nexflow.panels.runtime.errors import ViewEffectRejected
from nexflow.sandbox import Effect, JSONValue, ViewEffect

ViewProps = dict[str, dict[str, JSONValue]]
METHODS = ("setFilter", "clearFilter", "setProp", "reset")
_FIXED_PROPS = frozenset({"id", "trigger", "arg"})
_PROP_TYPES: dict[str, Callable[[object], bool]] = {
    "string": lambda v: isinstance(v, str),
    "integer": lambda v: isinstance(v, int) and not isinstance(v, bool),
    "number": lambda v: isinstance(v, int | float) and not isinstance(v, bool),
    "boolean": lambda v: isinstance(v, bool),
    "list": lambda v: isinstance(v, list),
    "object": lambda v: isinstance(v, dict),
}


def apply_view_effects(
    tree: RenderTree,
    view: Mapping[str, Mapping[str, JSONValue]],
    effects: Sequence[Effect],
    catalogue: Catalogue = CATALOGUE,
) -> ViewProps:
    """The new view props after ``effects``; raises :class:`ViewEffectRejected`."""
    out: ViewProps = {key: dict(props) for key, props in view.items()}
    for effect in effects:
        if isinstance(effect, ViewEffect):
            _apply(tree, out, effect, catalogue)
    return {key: props for key, props in out.items() if props}


def _apply(tree: RenderTree, out: ViewProps, effect: ViewEffect, catalogue: Catalogue) -> None:
    args = list(effect.args)
    if effect.component is not None:
        target: JSONValue = effect.component
    elif args:
        target = args.pop(0)
    else:
        raise ViewEffectRejected(
            f"$view.{effect.method}() needs a target: $view.{effect.method}('logs', ...) "
            f"or $view.LogStream.{effect.method}(...)"
        )
    call = f"$view.{effect.method}({', '.join(map(repr, effect.args))})"
    if not isinstance(target, str):
        raise ViewEffectRejected(f"{call}: the target must be a string")
    if effect.method not in METHODS:
        raise ViewEffectRejected(f"{call}: unknown view method; use one of {', '.join(METHODS)}")
    prop, value = _prop_and_value(call, effect.method, args)
    nodes = _targets(tree, target, prop, catalogue)
    if not nodes:
        having = f" with a {prop!r} prop" if prop else ""
        raise ViewEffectRejected(
            f"{call}: no component{having} is called {target!r}; address one by its id, "
            "render key, type or the state it shows"
        )
    for node in nodes:
        props = out.setdefault(node.key, {})
        if effect.method == "reset":
            props.clear()
            continue
        assert prop is not None
        spec = _spec(node, catalogue, prop)
        if value is None:
            props.pop(prop, None)
        elif spec is not None and not _fits(spec, value):
            raise ViewEffectRejected(f"{call}: {node.type}.{prop} {_expected(spec)}")
        else:
            props[prop] = value


def _prop_and_value(call: str, method: str, args: list[JSONValue]) -> tuple[str | None, JSONValue]:
    if method == "setFilter":
        if len(args) != 1:
            raise ViewEffectRejected(f"{call}: setFilter takes one value (text or null)")
        return "filter", args[0]
    if method == "clearFilter":
        return "filter", None
    if method == "setProp":
        if len(args) != 2 or not isinstance(args[0], str):
            raise ViewEffectRejected(f"{call}: setProp takes a prop name and a value")
        if args[0] in _FIXED_PROPS:
            raise ViewEffectRejected(f"{call}: {args[0]!r} cannot be changed at run time")
        return args[0], args[1]
    return None, None


def _targets(
    tree: RenderTree, target: str, prop: str | None, catalogue: Catalogue
) -> list[RenderNode]:
    nodes = [n for n in tree.walk() if catalogue.get(n.type) is not None]
    if prop is not None:
        nodes = [n for n in nodes if _spec(n, catalogue, prop) is not None]
    tiers: tuple[Callable[[RenderNode], bool], ...] = (
        lambda n: n.props.get("id") == target,
        lambda n: n.key == target,
        lambda n: n.type == target,
        lambda n: target in _refs(n),
    )
    for tier in tiers:
        found = [n for n in nodes if tier(n)]
        if found:
            return found
    return []


def _refs(node: RenderNode) -> set[str]:
    return {
        ref for parts in node.bindings.values() for p in parts if p.kind == "expr" for ref in p.refs
    }


def _spec(node: RenderNode, catalogue: Catalogue, prop: str) -> PropSpec | None:
    spec = catalogue.get(node.type)
    return spec.prop_map.get(prop) if spec is not None else None


def _fits(spec: PropSpec, value: JSONValue) -> bool:
    if spec.type == "enum":
        return value in spec.choices
    check = _PROP_TYPES.get(spec.type)
    return check is None or check(value)


def _expected(spec: PropSpec) -> str:
    if spec.type == "enum":
        return f"must be one of {', '.join(spec.choices)}"
    return f"must be a {spec.type}"


def with_overrides(tree: RenderTree, view: Mapping[str, Mapping[str, JSONValue]]) -> RenderTree:
    """A copy of a (resolved) tree with the instance's view props laid over it."""
    if not view:
        return tree
    return tree.model_copy(update={"root": _overlay(tree.root, view)})


def _overlay(node: RenderNode, view: Mapping[str, Mapping[str, JSONValue]]) -> RenderNode:
    children = tuple(_overlay(c, view) for c in node.children)
    update: dict[str, object] = {"children": children}
    if node.key in view:
        update["props"] = {**node.props, **view[node.key]}
    return node.model_copy(update=update)
