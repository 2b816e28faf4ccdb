"""Validation at the sandbox edge: tool arguments going in, new state coming out.

A handler's result is accepted only if it is exactly the panel's ``<Data>``: the
same keys (none added, none removed) and every value of its declared type. The
service applies an accepted state together with its effects, or nothing.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any, cast

from nexflow.panels import PanelError, load
from nexflow.panels.ast import Arg, NexusPanel, StateType, Tool
from nexflow.panels.runtime.errors import ArgsInvalid, PanelInvalid, StateRejected
from nexflow.panels.values import zero_value
from nexflow.sandbox import JSONObject, JSONValue

JSON_TYPES: dict[str, str] = {
    "number": "number",
    "string": "string",
    "boolean": "boolean",
    "list": "array",
    "object": "object",
}
_MAX_PROBLEMS = 5


def type_name(value: object) -> str:
    match value:
        case None:
            return "null"
        case bool():
            return "boolean"
        case int() | float():
            return "number"
        case str():
            return "string"
        case list():
            return "list"
        case dict():
            return "object"
    return type(value).__name__


def has_type(value: object, type_: StateType) -> bool:
    if type_ == "number":
        return (
            isinstance(value, int | float)
            and not isinstance(value, bool)
            and (not isinstance(value, float) or math.isfinite(value))
        )
    expected: dict[str, type | tuple[type, ...]] = {
        "string": str,
        "boolean": bool,
        "list": list,
        "object": dict,
    }
    return isinstance(value, expected[type_])


def load_panel(source: str) -> NexusPanel:
    """Parse and validate NXML; :class:`PanelInvalid` (with diagnostics) if it is not usable."""
    try:
        panel, _warnings = load(source)
    except PanelError as exc:
        raise PanelInvalid(f"the NXML is not a valid panel: {exc.first}", exc.diagnostics) from exc
    return panel


def initial_state(panel: NexusPanel) -> JSONObject:
    """Each state's default (the type's zero value when none is written)."""
    out: JSONObject = {}
    for s in panel.data.states:
        out[s.name] = s.default if s.default is not None else zero_value(s.type)
    return out


def check_state(panel: NexusPanel, state: Mapping[str, Any]) -> None:
    """Raise :class:`StateRejected` unless ``state`` matches the Data declarations."""
    declared = {s.name: s for s in panel.data.states}
    problems: list[str] = []
    for key in state:
        if key not in declared:
            names = ", ".join(declared) or "none"
            problems.append(f"$state.{key} is not declared in <Data> (declared: {names})")
    for name, decl in declared.items():
        if name not in state:
            problems.append(f"$state.{name} was deleted; every declared state must stay")
        elif not has_type(state[name], decl.type):
            problems.append(
                f"$state.{name} must be a {decl.type}, the handler set a {type_name(state[name])}"
            )
    if problems:
        more = len(problems) - _MAX_PROBLEMS
        text = "; ".join(problems[:_MAX_PROBLEMS]) + (f" (and {more} more)" if more > 0 else "")
        raise StateRejected(f"the new state was rejected, nothing was applied: {text}")


def check_args(tool: Tool, args: Mapping[str, Any]) -> JSONObject:
    """The arguments with defaults filled in, or :class:`ArgsInvalid`.

    Unknown names, missing required arguments and values of the wrong type are
    refused; ``null`` for an optional argument means "not given".
    """
    known = {a.name: a for a in tool.args}
    problems: list[str] = []
    for name in args:
        if name not in known:
            names = ", ".join(known) or "no arguments"
            problems.append(f"unknown argument {name!r} ({tool.name} takes {names})")
    out: JSONObject = {}
    for arg in tool.args:
        value = args.get(arg.name)
        if value is None:
            if arg.required:
                problems.append(f"missing required argument {arg.name!r} ({arg.type})")
            else:
                out[arg.name] = arg.default
            continue
        if not has_type(value, arg.type):
            problems.append(f"{arg.name!r} must be a {arg.type}, not a {type_name(value)}")
            continue
        out[arg.name] = cast(JSONValue, value)
    if problems:
        raise ArgsInvalid(f"{tool.name}: " + "; ".join(problems))
    return out


def args_schema(tool: Tool) -> dict[str, Any]:
    """JSON Schema of a tool's arguments, as LLM providers and MCP clients expect it."""
    props: dict[str, Any] = {}
    for arg in tool.args:
        props[arg.name] = _arg_schema(arg)
    schema: dict[str, Any] = {
        "type": "object",
        "properties": props,
        "additionalProperties": False,
    }
    required = [a.name for a in tool.args if a.required]
    if required:
        schema["required"] = required
    return schema


def _arg_schema(arg: Arg) -> dict[str, Any]:
    schema: dict[str, Any] = {"type": JSON_TYPES[arg.type]}
    if arg.description:
        schema["description"] = arg.description
    if arg.default is not None:
        schema["default"] = arg.default
    return schema
