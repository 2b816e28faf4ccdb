"""Typed values from attribute text, and JavaScript-like display strings."""

from __future__ import annotations

import json
import math
import re

from pydantic import JsonValue

from nexflow.panels.ast import StateType
from nexflow.panels.components import PropSpec

_INT = re.compile(r"[+-]?\d+")
_ZERO: dict[str, JsonValue] = {
    "number": 0,
    "string": "",
    "boolean": False,
    "list": [],
    "object": {},
}
_EXAMPLES = {
    "number": '"0" or "2.5"',
    "string": "any text",
    "boolean": '"true" or "false"',
    "list": 'JSON like "[]" or "[1, 2]"',
    "object": 'JSON like "{}" or "{&quot;a&quot;: 1}"',
    "integer": '"0" or "240"',
}


def zero_value(type_: StateType) -> JsonValue:
    value = _ZERO[type_]
    return [] if value == [] else {} if value == {} else value


def example_of(type_: str) -> str:
    return _EXAMPLES.get(type_, "a value")


def _no_constant(name: str) -> JsonValue:
    raise ValueError(f"{name} is not JSON")


def _number(raw: str) -> int | float:
    text = raw.strip()
    if _INT.fullmatch(text):
        return int(text)
    number = float(text)
    if not math.isfinite(number):
        raise ValueError("not a finite number")
    return number


def coerce(type_: str, raw: str) -> JsonValue:
    """``raw`` as a value of a state/arg/prop type; raises ``ValueError`` if it is not one."""
    if type_ in ("string", "any", "tool", "enum"):
        return raw
    if type_ == "number":
        return _number(raw)
    if type_ == "integer":
        if not _INT.fullmatch(raw.strip()):
            raise ValueError("not an integer")
        return int(raw)
    if type_ == "boolean":
        if raw.strip() in ("true", "false"):
            return raw.strip() == "true"
        raise ValueError("not true or false")
    if type_ in ("list", "object"):
        try:
            value = json.loads(raw, parse_constant=_no_constant)
        except RecursionError as exc:
            raise ValueError("JSON nested too deeply") from exc
        expected = list if type_ == "list" else dict
        if not isinstance(value, expected):
            raise ValueError(f"JSON is not a {type_}")
        return value
    raise ValueError(f"unknown type {type_}")


def coerce_prop(spec: PropSpec, raw: str) -> JsonValue:
    """A literal prop value; enums must be one of ``spec.choices``."""
    if spec.type == "enum" and raw not in spec.choices:
        raise ValueError(f"must be one of {', '.join(spec.choices)}")
    return coerce(spec.type, raw)


def js_string(value: object) -> str:
    """``String(value)`` as JavaScript would write it, for text templates."""
    text: str
    if value is None:
        text = ""
    elif isinstance(value, bool):
        text = "true" if value else "false"
    elif isinstance(value, float) and value.is_integer() and abs(value) < 1e21:
        text = str(int(value))
    elif isinstance(value, float):
        text = repr(value)
    elif isinstance(value, list):
        text = ",".join(js_string(v) for v in value)
    elif isinstance(value, dict):
        text = "[object Object]"
    else:
        text = str(value)
    return text
