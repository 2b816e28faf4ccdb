"""Split ``SKILL.md`` into frontmatter and body and parse the frontmatter.

Parsing mirrors what real clients accept: strict YAML first; when that fails, an
OpenClaw-compatible line parser (``key: rest of line`` plus indented continuation lines)
recovers files whose unquoted descriptions contain ``: `` (valid for OpenClaw, invalid
YAML). Every failure carries the 1-based line number in the file.
"""

from __future__ import annotations

import json
import re
import textwrap
from dataclasses import dataclass
from typing import Any

import yaml

_CONFLICT = re.compile(r"^(<{7}|={7}|>{7})(\s|$)")
_KEY_LINE = re.compile(r"^([A-Za-z_][\w-]*):[ \t]*(.*)$")
_FENCE = re.compile(r"^---[ \t]*$")


class FrontmatterError(Exception):
    """The frontmatter cannot be read. ``line`` is 1-based within SKILL.md, if known."""

    def __init__(self, message: str, line: int | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.line = line


@dataclass(frozen=True, slots=True)
class ParsedDocument:
    fields: dict[str, Any]
    body: str
    body_line: int
    recovered: str | None = None
    """When set, strict YAML failed and the line parser was used; the YAML error text."""


def parse_document(text: str) -> ParsedDocument:
    """Parse a whole SKILL.md text. Raises :class:`FrontmatterError`."""
    text = text.removeprefix("\ufeff").replace("\r\n", "\n").replace("\r", "\n")
    lines = text.split("\n")
    if not lines or not _FENCE.match(lines[0]):
        closing = next((i for i, ln in enumerate(lines) if _FENCE.match(ln)), None)
        if closing is not None and _KEY_LINE.match(lines[0]):
            raise FrontmatterError(
                f"frontmatter is missing its opening '---' (line 1 starts with "
                f"{lines[0].split(':', 1)[0]!r}:, closed by '---' on line {closing + 1})",
                1,
            )
        raise FrontmatterError("no YAML frontmatter: SKILL.md must start with a '---' line", 1)
    end = next((i for i in range(1, len(lines)) if _FENCE.match(lines[i])), None)
    if end is None:
        raise FrontmatterError("frontmatter opened on line 1 is never closed by '---'", 1)
    block = lines[1:end]
    for offset, ln in enumerate(block):
        if _CONFLICT.match(ln):
            raise FrontmatterError(
                "unresolved git merge-conflict marker in frontmatter", offset + 2
            )
    body = "\n".join(lines[end + 1 :]).strip("\n")
    raw = "\n".join(block)
    try:
        loaded = yaml.safe_load(raw) if raw.strip() else {}
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        where = f"line {mark.line + 2}: " if mark is not None else ""
        problem = getattr(e, "problem", None) or type(e).__name__
        fields = _line_parse(block)
        return ParsedDocument(fields, body, end + 2, recovered=f"{where}{problem}")
    if not isinstance(loaded, dict):
        raise FrontmatterError(
            f"frontmatter must be a mapping of keys, got {type(loaded).__name__}", 2
        )
    return ParsedDocument({str(k): v for k, v in loaded.items()}, body, end + 2)


def _line_parse(block: list[str]) -> dict[str, Any]:
    """OpenClaw-style recovery: top-level ``key: value`` lines, indented continuations."""
    entries: list[tuple[str, str, list[str], int]] = []
    for index, ln in enumerate(block):
        match = _KEY_LINE.match(ln)
        if match:
            entries.append((match.group(1), match.group(2), [], index + 2))
        elif entries and (ln.startswith((" ", "\t")) or not ln.strip()):
            entries[-1][2].append(ln)
    fields: dict[str, Any] = {}
    for key, first, rest, line in entries:
        fields[key] = _line_value(key, first, rest, line)
    return fields


def _line_value(key: str, first: str, rest: list[str], line: int) -> Any:
    first = first.strip()
    if first[:1] in "{[" or (not first and rest and rest[0].strip()[:1] in "{["):
        text = "\n".join([first, *rest])
        return _structured(key, text, line)
    if not first or first in "|>" or first in ("|-", ">-"):
        if first in ("", None) and rest and _KEY_LINE.match(rest[0].strip()):
            return _structured(key, textwrap.dedent("\n".join(rest)), line)
        return " ".join(r.strip() for r in rest if r.strip())
    value = " ".join([first, *(r.strip() for r in rest if r.strip())])
    if len(value) >= 2 and value[0] == value[-1] and value[0] in "'\"":
        value = value[1:-1]
    return value


def _structured(key: str, text: str, line: int) -> Any:
    try:
        return json.loads(text)
    except ValueError:
        pass
    try:
        return yaml.safe_load(text)
    except yaml.YAMLError as e:
        raise FrontmatterError(
            f"{key!r} is neither valid JSON nor valid YAML "
            f"({getattr(e, 'problem', None) or type(e).__name__})",
            line,
        ) from e
