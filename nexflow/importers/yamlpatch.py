"""Adding a missing mapping to ``config.yml`` as text, so the user's comments, order and
formatting survive (PyYAML cannot write a file back as it was read).

:func:`add_mapping` inserts ``key: value`` under a path of block mappings, creating the
missing parents (and turning an empty ``{}`` parent into a block), then parses the result
and checks that exactly that value was added. Anything it cannot do safely (a parent
written in flow style, a key that already exists, an unexpected parse) raises
:class:`~nexflow.importers.errors.ConfigPatchError`; the caller reports it with the
snippet to add by hand.
"""

from __future__ import annotations

import copy
import re
from collections.abc import Mapping, Sequence
from typing import Any

import yaml

from nexflow.importers.errors import ConfigPatchError

_KEY = r"^(?P<indent>[ ]*)(?P<key>{key}):(?P<rest>[ \t].*|)$"


def snippet(path: Sequence[str], value: Mapping[str, Any]) -> str:
    """``value`` at ``path`` as a stand-alone YAML fragment."""
    node: Any = dict(value)
    for key in reversed(path):
        node = {key: node}
    return yaml.safe_dump(node, default_flow_style=False, sort_keys=False)


def add_mapping(text: str, path: Sequence[str], value: Mapping[str, Any]) -> str:
    """``text`` with ``value`` added at ``path`` (which must not exist yet)."""
    try:
        before = (yaml.safe_load(text) if text.strip() else None) or {}
    except yaml.YAMLError as e:
        raise ConfigPatchError("config.yml is not valid YAML") from e
    if not isinstance(before, dict):
        raise ConfigPatchError("the top level of config.yml is not a mapping")
    lines = text.splitlines()
    new_lines = _insert(lines, 0, len(lines), "", list(path), dict(value))
    result = "\n".join(new_lines) + "\n"
    expected = copy.deepcopy(before)
    node = expected
    for key in path[:-1]:
        child = node.get(key)
        if child is None:
            child = node[key] = {}
        if not isinstance(child, dict):
            raise ConfigPatchError(f"{key} in config.yml is not a mapping")
        node = child
    if path[-1] in node:
        raise ConfigPatchError(f"{'.'.join(path)} already exists")
    node[path[-1]] = dict(value)
    try:
        after = yaml.safe_load(result) or {}
    except yaml.YAMLError as e:
        raise ConfigPatchError("the edited config.yml would not parse") from e
    if after != expected:
        raise ConfigPatchError("the edit would change more than the new section")
    return result


def _insert(
    lines: list[str], start: int, end: int, indent: str, path: list[str], value: dict[str, Any]
) -> list[str]:
    key, rest = path[0], path[1:]
    pattern = re.compile(_KEY.format(key=re.escape(key)))
    for i in range(start, end):
        match = pattern.match(lines[i])
        if match is None or match.group("indent") != indent:
            continue
        if not rest:
            raise ConfigPatchError(f"{key} already exists")
        tail = match.group("rest").split("#", 1)[0].strip()
        if tail == "{}":
            lines = [*lines[:i], f"{indent}{key}:", *lines[i + 1 :]]
            return _append(lines, i + 1, i + 1, indent + "  ", rest, value)
        if tail:
            raise ConfigPatchError(f"{key} in config.yml is written inline; cannot add to it")
        body_end = _block_end(lines, i + 1, end, len(indent))
        child = _child_indent(lines, i + 1, body_end) or indent + "  "
        return _insert(lines, i + 1, body_end, child, rest, value)
    return _append(lines, start, end, indent, path, value)


def _append(
    lines: list[str], start: int, end: int, indent: str, path: list[str], value: dict[str, Any]
) -> list[str]:
    """Insert ``path: value`` as new lines at the end of the block ``start:end``."""
    block = snippet(path, value).splitlines()
    at = end
    while indent and at > start and (not lines[at - 1].strip() or lines[at - 1].lstrip()[0] == "#"):
        at -= 1  # inside a section, trailing comments belong to what follows it
    if not indent and at > 0 and lines[at - 1].strip():
        block = ["", *block]
    return [*lines[:at], *[indent + line if line else line for line in block], *lines[at:]]


def _block_end(lines: list[str], start: int, end: int, parent_indent: int) -> int:
    for i in range(start, end):
        stripped = lines[i].strip()
        indent = len(lines[i]) - len(lines[i].lstrip(" "))
        if stripped and not stripped.startswith("#") and indent <= parent_indent:
            return i
    return end


def _child_indent(lines: list[str], start: int, end: int) -> str | None:
    for i in range(start, end):
        stripped = lines[i].strip()
        if stripped and not stripped.startswith("#"):
            return lines[i][: len(lines[i]) - len(lines[i].lstrip(" "))]
    return None
