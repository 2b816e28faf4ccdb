"""A tiny, safe template renderer for webhook payloads.

``"CI {workflow_run.name}: {workflow_run.conclusion}"`` looks like ``str.format`` but only
walks JSON: each ``{dotted.path}`` segment is a dict key, or a list index when the value
is a list and the segment is a number. No attribute access, no format specs, no
conversions; ``{{`` and ``}}`` are literal braces. A missing key (or ``null``) renders as
``?``; objects and lists render as compact JSON. Every value and the whole message are cut
to a length, so a huge payload cannot make a huge chat message, and values are defanged
(:func:`_defang`): the payload is untrusted, the template is the owner's.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence

from nexflow.hooks import TemplateError

MISSING = "?"
MAX_VALUE_CHARS = 500
MAX_MESSAGE_CHARS = 4000

# A parsed template: literal text (str) and field paths (tuple of segments), in order.
Part = str | tuple[str, ...]


def parse_template(template: str) -> tuple[Part, ...]:
    """Split ``template`` into literals and paths; raise :class:`TemplateError` on an
    unbalanced brace or an empty field."""
    parts: list[Part] = []
    literal: list[str] = []
    i, n = 0, len(template)
    while i < n:
        ch = template[i]
        if ch in "{}" and template[i : i + 2] in ("{{", "}}"):
            literal.append(ch)
            i += 2
        elif ch == "}":
            raise TemplateError(f"template: single '}}' at position {i} (write '}}}}')")
        elif ch == "{":
            end = template.find("}", i + 1)
            field = template[i + 1 : end] if end != -1 else ""
            if end == -1 or "{" in field:
                raise TemplateError(f"template: '{{' at position {i} is not closed")
            path = tuple(segment.strip() for segment in field.split("."))
            if not all(path):
                raise TemplateError(f"template: empty field name {{{field}}} at position {i}")
            if literal:
                parts.append("".join(literal))
                literal = []
            parts.append(path)
            i = end + 1
        else:
            literal.append(ch)
            i += 1
    if literal:
        parts.append("".join(literal))
    return tuple(parts)


def lookup(payload: object, path: Sequence[str]) -> object | None:
    """The value at ``path`` in a JSON value (dicts and lists only), or None."""
    value: object | None = payload
    for segment in path:
        if isinstance(value, Mapping):
            value = value.get(segment)
        elif isinstance(value, list) and segment.isdigit():
            index = int(segment)
            value = value[index] if index < len(value) else None
        else:
            return None
    return value


def _text(value: object | None) -> str:
    if value is None:
        text = MISSING
    elif isinstance(value, bool):
        text = "true" if value else "false"
    elif isinstance(value, str):
        text = value
    elif isinstance(value, int | float):
        text = str(value)
    else:
        text = json.dumps(value, ensure_ascii=False, separators=(",", ":"))
    text = _defang(text)
    return text if len(text) <= MAX_VALUE_CHARS else text[: MAX_VALUE_CHARS - 1] + "…"


_CONTROL = re.compile(r"[\x00-\x1f\x7f\u2028\u2029]+")


def _defang(text: str) -> str:
    """A payload value is untrusted and the message may be shown as Markdown: it stays on
    one line (no headings, quotes or code fences of its own) and cannot make a link with a
    label of its choosing (``[label](url)`` becomes ``[label] (url)``)."""
    return _CONTROL.sub(" ", text).replace("](", "] (")


def render(template: str, payload: object) -> str:
    """Fill ``template`` from ``payload`` (a parsed JSON value)."""
    out = "".join(
        part if isinstance(part, str) else _text(lookup(payload, part))
        for part in parse_template(template)
    )
    return out if len(out) <= MAX_MESSAGE_CHARS else out[: MAX_MESSAGE_CHARS - 1] + "…"
