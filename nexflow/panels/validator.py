"""``validate(panel) -> list[Diagnostic]``: everything that makes a panel wrong or odd.

Errors mean the panel must not run; warnings mean it runs but something is likely
a mistake. Each diagnostic points at a line and column and hints at the fix.
"""

from __future__ import annotations

from collections.abc import Iterable
from difflib import get_close_matches

from nexflow.panels.ast import Arg, Component, NexusPanel, Prop, State, Tool
from nexflow.panels.bindings import BindingSite, binding_sites, state_ref_spans
from nexflow.panels.components import CATALOGUE, Catalogue, ComponentSpec
from nexflow.panels.errors import Diagnostic, NXMLValidationError, error, warning
from nexflow.panels.parser import parse
from nexflow.panels.values import coerce, coerce_prop, example_of
from nexflow.panels.xmlread import ParseLimits

__all__ = ["BindingSite", "binding_sites", "load", "validate"]


def _closest(word: str, options: Iterable[str]) -> str | None:
    pool = list(options)
    match = get_close_matches(word, pool, n=1, cutoff=0.6)
    if match:
        return match[0]
    lowered = word.lower()
    return next((o for o in pool if o.lower() == lowered), None) or next(
        (o for o in pool if len(word) >= 3 and o.lower().startswith(lowered)), None
    )


def _duplicates(nodes: Iterable[State | Tool | Arg], what: str) -> list[Diagnostic]:
    seen: set[str] = set()
    out: list[Diagnostic] = []
    for node in nodes:
        if node.name in seen:
            out.append(
                error(
                    f"duplicate-{what}",
                    f"{what} {node.name!r} is declared twice",
                    node.line,
                    node.column,
                    "rename it or remove one declaration",
                )
            )
        seen.add(node.name)
    return out


def _check_default(node: State | Arg) -> list[Diagnostic]:
    if node.default_raw is None:
        return []
    try:
        coerce(node.type, node.default_raw)
    except ValueError:
        kind = "state" if isinstance(node, State) else "arg"
        return [
            error(
                "bad-default",
                f"default {node.default_raw!r} of {kind} {node.name!r} is not a {node.type}",
                node.line,
                node.column,
                f"write default={example_of(node.type)} or change type",
            )
        ]
    return []


def _check_tool(tool: Tool, states: set[str]) -> list[Diagnostic]:
    out = _duplicates(tool.args, "arg")
    for a in tool.args:
        out += _check_default(a)
    if not tool.description:
        out.append(
            warning(
                "missing-description",
                f"tool {tool.name!r} has no description",
                tool.line,
                tool.column,
                'add description="..."; the AI reads it to decide when to call the tool',
            )
        )
    handler = tool.handler
    if handler is None:
        out.append(
            error(
                "missing-handler",
                f"tool {tool.name!r} has no <Handler>",
                tool.line,
                tool.column,
                "add <Handler>$state.x = ...;</Handler>",
            )
        )
        return out
    if not handler.source.strip():
        out.append(
            warning(
                "empty-handler",
                f"the handler of {tool.name!r} does nothing",
                handler.line,
                handler.column,
                "write the JavaScript it should run",
            )
        )
    reported: set[str] = set()
    for name, index in state_ref_spans(handler.source):
        if name not in states and name not in reported:
            reported.add(name)
            before = handler.source[:index]
            line = handler.line + before.count("\n")
            col = handler.column + index if "\n" not in before else index - before.rfind("\n")
            close = _closest(name, states)
            out.append(
                warning(
                    "unknown-state",
                    f"handler of {tool.name!r} uses undeclared state {name!r}",
                    line,
                    col,
                    f"did you mean $state.{close}?"
                    if close
                    else f'declare it: <State name="{name}" type="string" />',
                )
            )
    return out


def _check_bindings(name: str, prop: Prop, states: set[str]) -> list[Diagnostic]:
    out = []
    for ref in prop.refs:
        if ref not in states:
            close = _closest(ref, states)
            hint = (
                f"did you mean {{$state.{close}}}?"
                if close
                else f'declare it in <Data>: <State name="{ref}" type="string" />'
            )
            out.append(
                error(
                    "unknown-state",
                    f"{name} reads undeclared state {ref!r}",
                    prop.line,
                    prop.column,
                    hint,
                )
            )
    return out


def _check_prop(
    c: Component, spec: ComponentSpec, name: str, prop: Prop, states: set[str]
) -> list[Diagnostic]:
    pspec = spec.prop_map.get(name)
    if pspec is None:
        close = _closest(name, spec.prop_map)
        hint = (
            f'did you mean {close}="..."?'
            if close
            else f"<{c.type}> takes: {', '.join(spec.prop_map)}"
        )
        return [
            error("unknown-prop", f"<{c.type}> has no prop {name!r}", prop.line, prop.column, hint)
        ]
    if prop.is_bound:
        if not pspec.bindable:
            return [
                error(
                    "not-bindable",
                    f"{name} of <{c.type}> cannot be a binding",
                    prop.line,
                    prop.column,
                    f"write a constant, e.g. {spec.example}",
                )
            ]
        return _check_bindings(name, prop, states)
    try:
        coerce_prop(pspec, prop.value)
    except ValueError as exc:
        hint = (
            f"use one of: {', '.join(pspec.choices)}"
            if pspec.choices
            else f'write {example_of(pspec.type)}, or bind it: {name}="{{$state.x}}"'
        )
        return [
            error(
                "bad-value",
                f"{name} of <{c.type}>: {prop.value!r} {exc}",
                prop.line,
                prop.column,
                hint,
            )
        ]
    return []


def _check_trigger(
    c: Component, spec: ComponentSpec, panel: NexusPanel, states: set[str]
) -> list[Diagnostic]:
    trigger = c.trigger
    if trigger is None:
        return []
    if not spec.accepts_trigger:
        return [
            error(
                "trigger-not-allowed",
                f"<{c.type}> cannot trigger tools",
                trigger.line,
                trigger.column,
                "use an <Action trigger=...> next to it",
            )
        ]
    tool = panel.tool(trigger.tool)
    if tool is None:
        close = _closest(trigger.tool, (t.name for t in panel.logic.tools))
        hint = (
            f'did you mean trigger="{close}"?'
            if close
            else f'declare <Tool name="{trigger.tool}"> in <Logic>'
        )
        return [
            error(
                "unknown-tool",
                f"<{c.type}> triggers undeclared tool {trigger.tool!r}",
                trigger.line,
                trigger.column,
                hint,
            )
        ]
    out: list[Diagnostic] = []
    for name, value in trigger.args.items():
        arg = tool.arg(name)
        if arg is None:
            close = _closest(name, (a.name for a in tool.args))
            out.append(
                error(
                    "unknown-arg",
                    f"tool {tool.name!r} has no argument {name!r}",
                    value.line,
                    value.column,
                    f'did you mean name="{close}"?'
                    if close
                    else f"{tool.name} takes: {', '.join(a.name for a in tool.args) or '-'}",
                )
            )
        elif value.is_bound:
            out += _check_bindings(f"argument {name}", value, states)
        else:
            try:
                coerce(arg.type, value.value)
            except ValueError:
                out.append(
                    error(
                        "bad-value",
                        f"argument {name!r} must be a {arg.type}",
                        value.line,
                        value.column,
                        f"write value={example_of(arg.type)}",
                    )
                )
    implicit = {str(c.props["arg"].value)} if "arg" in c.props else set()
    if "arg" in spec.prop_map and not implicit:
        implicit = {str(spec.prop_map["arg"].default)}
    for arg in tool.args:
        if arg.required and arg.name not in trigger.args and arg.name not in implicit:
            out.append(
                error(
                    "missing-arg",
                    f"tool {tool.name!r} needs argument {arg.name!r}",
                    trigger.line,
                    trigger.column,
                    f'add <Arg name="{arg.name}" value="..." /> inside <{c.type}>',
                )
            )
    return out


def _check_component(
    c: Component, panel: NexusPanel, catalogue: Catalogue, states: set[str]
) -> list[Diagnostic]:
    spec = catalogue.get(c.type)
    if spec is None:
        close = _closest(c.type, catalogue.names())
        hint = (
            f"did you mean <{close}>?"
            if close
            else f"known components: {', '.join(catalogue.names())}"
        )
        return [error("unknown-component", f"unknown component <{c.type}>", c.line, c.column, hint)]
    out: list[Diagnostic] = []
    for name, prop in c.props.items():
        out += _check_prop(c, spec, name, prop, states)
    for pspec in spec.props:
        present = c.trigger is not None if pspec.name == "trigger" else pspec.name in c.props
        if pspec.required and not present:
            body = " or as the element text" if spec.body_prop == pspec.name else ""
            out.append(
                error(
                    "missing-prop",
                    f"<{c.type}> needs {pspec.name}",
                    c.line,
                    c.column,
                    f'add {pspec.name}="..."{body}, e.g. {spec.example}',
                )
            )
    out += _check_trigger(c, spec, panel, states)
    if c.children and not spec.children:
        first = c.children[0]
        out.append(
            error(
                "no-children",
                f"<{c.type}> cannot contain <{first.type}>",
                first.line,
                first.column,
                "wrap the components in a <Layout>",
            )
        )
    return out


def validate(panel: NexusPanel, *, catalogue: Catalogue = CATALOGUE) -> list[Diagnostic]:
    """All diagnostics for ``panel`` (including the parser's ``issues``), by position."""
    states = {s.name for s in panel.data.states}
    out: list[Diagnostic] = list(panel.issues)
    out += _duplicates(panel.data.states, "state")
    out += _duplicates(panel.logic.tools, "tool")
    for state in panel.data.states:
        out += _check_default(state)
    for tool in panel.logic.tools:
        out += _check_tool(tool, states)
    if not panel.view.children:
        out.append(
            warning(
                "empty-view",
                "the panel has no <View> components",
                panel.view.line or panel.line,
                panel.view.column or panel.column,
                'add <View><Layout strategy="auto">...</Layout></View>',
            )
        )
    for component in panel.view.walk():
        out += _check_component(component, panel, catalogue, states)
    return sorted(out, key=lambda d: (d.line, d.column))


def load(
    xml: str, *, limits: ParseLimits | None = None, catalogue: Catalogue = CATALOGUE
) -> tuple[NexusPanel, list[Diagnostic]]:
    """Parse and validate; returns the panel and its warnings.

    Raises :class:`NXMLValidationError` carrying every diagnostic (errors first) when
    any is an error, besides the parser's own errors.
    """
    panel = parse(xml, limits=limits, catalogue=catalogue)
    found = validate(panel, catalogue=catalogue)
    errors = [d for d in found if d.severity == "error"]
    if errors:
        raise NXMLValidationError(errors + [d for d in found if d.severity == "warning"])
    return panel, found
