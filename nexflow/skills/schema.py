"""Input/output schemas: where they are declared and a minimal JSON Schema check.

Only the subset skills need is implemented: ``type`` (one or a list), ``properties``,
``required``, ``items``, ``enum``, ``additionalProperties: false``. Unknown keywords are
ignored, as a JSON Schema validator would for vocabularies it does not know.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from typing import Any

_SECTION = re.compile(r"^#{1,6}\s*(?:\d+\.\s*)?(input|output)\s+schema\b.*$", re.I | re.M)
_JSON_FENCE = re.compile(r"^```json[ \t]*\n(.*?)^```", re.S | re.M)
_HEADING = re.compile(r"^#{1,6}\s", re.M)

_TYPES: dict[str, tuple[type, ...]] = {
    "object": (dict,),
    "array": (list, tuple),
    "string": (str,),
    "boolean": (bool,),
    "null": (type(None),),
}


def schema_from_body(body: str, which: str) -> Mapping[str, Any] | None:
    """The first ```json block under a ``## Input schema`` / ``## Output schema`` heading."""
    for match in _SECTION.finditer(body):
        if match.group(1).lower() != which:
            continue
        rest = body[match.end() :]
        nxt = _HEADING.search(rest)
        section = rest[: nxt.start()] if nxt else rest
        fence = _JSON_FENCE.search(section)
        if fence is None:
            return None
        try:
            parsed = json.loads(fence.group(1))
        except ValueError:
            return None
        if isinstance(parsed, dict) and ("type" in parsed or "properties" in parsed):
            return parsed
        return None
    return None


def _is_type(value: Any, name: str) -> bool:
    if name == "integer":
        return isinstance(value, int) and not isinstance(value, bool)
    if name == "number":
        return isinstance(value, int | float) and not isinstance(value, bool)
    kinds = _TYPES.get(name)
    return True if kinds is None else isinstance(value, kinds)


def validate(value: Any, schema: Mapping[str, Any], path: str = "$") -> list[str]:
    """Problems found, each prefixed with a JSON path; empty when ``value`` conforms."""
    problems: list[str] = []
    expected = schema.get("type")
    if expected is not None:
        names = [expected] if isinstance(expected, str) else list(expected)
        if not any(_is_type(value, str(n)) for n in names):
            got = "null" if value is None else type(value).__name__
            return [f"{path}: expected {' or '.join(map(str, names))}, got {got}"]
    enum = schema.get("enum")
    if isinstance(enum, list) and value not in enum:
        problems.append(f"{path}: {value!r} is not one of {enum!r}")
    if isinstance(value, dict):
        props = schema.get("properties")
        props = props if isinstance(props, Mapping) else {}
        required = schema.get("required")
        for key in required if isinstance(required, list) else []:
            if key not in value:
                problems.append(f"{path}: missing required property {key!r}")
        for key, item in value.items():
            sub = props.get(key)
            if isinstance(sub, Mapping):
                problems.extend(validate(item, sub, f"{path}.{key}"))
            elif schema.get("additionalProperties") is False:
                problems.append(f"{path}: unexpected property {key!r}")
    if isinstance(value, list | tuple):
        items = schema.get("items")
        if isinstance(items, Mapping):
            for index, item in enumerate(value):
                problems.extend(validate(item, items, f"{path}[{index}]"))
    return problems
