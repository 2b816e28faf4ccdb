"""Reading the source tools' files: text, JSON, JSON5 (OpenClaw), YAML and ``.env``.

Every failure is a :class:`~nexflow.importers.errors.SourceFileInvalid` naming the file
and saying what is wrong (with the line when the parser knows it); nothing else escapes.
JSON5 is read by turning the subset OpenClaw's docs use (comments, trailing commas,
unquoted keys, single-quoted strings) into JSON first; exotic JSON5 (hex numbers,
``Infinity``, multi-line strings) is reported as invalid rather than guessed.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import yaml

from nexflow.importers.errors import SourceFileInvalid

MAX_BYTES = 2_000_000  # a persona, memory or config file bigger than this is not a note
_IDENT = re.compile(r"[A-Za-z_$][\w$-]*")
_ENV_LINE = re.compile(r"^(?:export\s+)?([A-Za-z_][A-Za-z0-9_]*)\s*=\s*(.*)$")


def read_text(path: Path) -> str:
    try:
        size = path.stat().st_size
        if size > MAX_BYTES:
            raise SourceFileInvalid(str(path), f"{size} bytes; larger than {MAX_BYTES}")
        return path.read_text(encoding="utf-8")
    except UnicodeDecodeError as e:
        raise SourceFileInvalid(str(path), f"not UTF-8 text (byte {e.start})") from e
    except OSError as e:
        raise SourceFileInvalid(str(path), f"cannot read: {e.strerror or e}") from e


def read_json(path: Path) -> Any:
    return _read_json(path, "JSON", lambda text: text)


def read_json5(path: Path) -> Any:
    return _read_json(path, "JSON5", json5_to_json)


def _read_json(path: Path, label: str, to_json: Callable[[str], str]) -> Any:
    text = read_text(path)
    try:
        return json.loads(to_json(text))
    except ValueError as e:  # json.JSONDecodeError is one
        where = (
            f" at line {e.lineno}, column {e.colno}: {e.msg}"
            if isinstance(e, json.JSONDecodeError)
            else f": {e}"
        )
        raise SourceFileInvalid(str(path), f"invalid {label}{where}") from e


def read_yaml(path: Path) -> Any:
    text = read_text(path)
    try:
        return yaml.safe_load(text)
    except yaml.MarkedYAMLError as e:
        mark = e.problem_mark
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        raise SourceFileInvalid(str(path), f"invalid YAML{where}: {e.problem}") from e
    except yaml.YAMLError as e:
        raise SourceFileInvalid(str(path), "invalid YAML") from e


def read_env(path: Path) -> dict[str, str]:
    """``KEY=VALUE`` lines; comments and blank lines skipped, quotes around values removed."""
    values: dict[str, str] = {}
    for number, line in enumerate(read_text(path).splitlines(), 1):
        stripped = line.strip()
        if not stripped or stripped.startswith("#"):
            continue
        match = _ENV_LINE.match(stripped)
        if match is None:
            raise SourceFileInvalid(str(path), f"line {number}: expected KEY=VALUE")
        value = match.group(2).strip()
        if len(value) >= 2 and value[0] == value[-1] and value[0] in "'\"":
            value = value[1:-1]
        elif " #" in value:
            value = value.split(" #", 1)[0].rstrip()
        values[match.group(1)] = value
    return values


def json5_to_json(text: str) -> str:  # noqa: PLR0912 - one scanner, one loop
    """The JSON5 subset OpenClaw writes, as JSON. Raises ``ValueError`` on an unclosed
    string or comment."""
    out: list[str] = []
    i, n = 0, len(text)
    while i < n:
        c = text[i]
        if c in "\"'":
            j, buf = i + 1, ['"']
            while j < n and text[j] != c:
                if text[j] == "\\" and j + 1 < n:
                    escaped = text[j + 1]
                    buf.append("'" if escaped == "'" else "\\" + escaped)
                    j += 2
                    continue
                buf.append('\\"' if text[j] == '"' else text[j])
                j += 1
            if j >= n:
                raise ValueError(f"unclosed string starting at offset {i}")
            out.append("".join(buf) + '"')
            i = j + 1
        elif text.startswith("//", i):
            end = text.find("\n", i)
            i = n if end < 0 else end
        elif text.startswith("/*", i):
            end = text.find("*/", i + 2)
            if end < 0:
                raise ValueError(f"unclosed comment starting at offset {i}")
            out.append(" ")
            i = end + 2
        elif c == ",":
            j = i + 1
            while j < n and (text[j].isspace() or text.startswith(("//", "/*"), j)):
                if text.startswith("//", j):
                    nl = text.find("\n", j)
                    j = n if nl < 0 else nl
                elif text.startswith("/*", j):
                    close = text.find("*/", j + 2)
                    j = n if close < 0 else close + 2
                else:
                    j += 1
            if j < n and text[j] in "}]":
                i += 1  # a trailing comma
            else:
                out.append(c)
                i += 1
        elif (match := _IDENT.match(text, i)) is not None and _is_key(text, match.end()):
            out.append(json.dumps(match.group(0)))
            i = match.end()
        else:
            out.append(c)
            i += 1
    return "".join(out)


def _is_key(text: str, end: int) -> bool:
    rest = text[end:].lstrip(" \t")
    return rest.startswith(":")
