"""Binding templates: ``"{$state.cpu_load}%"`` split into text and expressions.

Syntax: ``{expr}`` is a JavaScript expression evaluated in the sandbox; ``{{`` and
``}}`` outside an expression are literal braces. Inside an expression, braces nest
and quoted strings (``'..'``, ``".."``, backticks) may contain anything.
"""

from __future__ import annotations

import re
from typing import NamedTuple

from nexflow.panels.ast import Component, ExprPart, NexusPanel, Part, Prop, TextPart

_STATE_REF = re.compile(r"\$state\s*(?:\.\s*([A-Za-z_$][\w$]*)|\[\s*(['\"])([^'\"\]]*)\2\s*\])")
_QUOTES = "'\"`"


class TemplateError(ValueError):
    """A malformed template; ``offset`` is the 0-based index in the raw value."""

    def __init__(self, message: str, offset: int, hint: str) -> None:
        super().__init__(message)
        self.message = message
        self.offset = offset
        self.hint = hint


def state_ref_spans(source: str) -> list[tuple[str, int]]:
    """Every ``$state.name`` / ``$state['name']`` in ``source`` with its offset."""
    return [(m.group(1) or m.group(3), m.start()) for m in _STATE_REF.finditer(source)]


def state_refs(source: str) -> tuple[str, ...]:
    """State names read or written as ``$state.name`` or ``$state['name']``, in order."""
    return tuple(dict.fromkeys(name for name, _ in state_ref_spans(source)))


def _scan_expression(raw: str, start: int) -> int:
    """Index of the ``}`` closing the expression opened at ``raw[start - 1]``."""
    depth = 0
    i = start
    n = len(raw)
    while i < n:
        ch = raw[i]
        if ch in _QUOTES:
            i += 1
            while i < n and raw[i] != ch:
                i += 2 if raw[i] == "\\" else 1
            if i >= n:
                raise TemplateError(
                    f"unterminated string {ch}...{ch} inside a binding",
                    start - 1,
                    f"close the string with {ch} before the closing }}",
                )
        elif ch == "{":
            depth += 1
        elif ch == "}":
            if depth == 0:
                return i
            depth -= 1
        i += 1
    raise TemplateError(
        "unbalanced braces: '{' opens a binding that is never closed",
        start - 1,
        "close the binding with '}', or write '{{' for a literal brace",
    )


def split_template(raw: str) -> tuple[Part, ...]:
    """Split a prop value into parts; raises :class:`TemplateError` when malformed."""
    if "{" not in raw and "}" not in raw:
        return (TextPart(text=raw),)
    parts: list[Part] = []
    text: list[str] = []
    i = 0
    n = len(raw)
    while i < n:
        ch = raw[i]
        if ch == "{" and raw.startswith("{{", i):
            text.append("{")
            i += 2
        elif ch == "}" and raw.startswith("}}", i):
            text.append("}")
            i += 2
        elif ch == "}":
            raise TemplateError(
                "unbalanced braces: '}' without a matching '{'",
                i,
                "remove the stray '}', or write '}}' for a literal brace",
            )
        elif ch == "{":
            end = _scan_expression(raw, i + 1)
            expr = raw[i + 1 : end].strip()
            if not expr:
                raise TemplateError(
                    "empty binding '{}'",
                    i,
                    "put an expression inside, e.g. {$state.name}, or write '{{}}' for braces",
                )
            if text:
                parts.append(TextPart(text="".join(text)))
                text = []
            parts.append(ExprPart(expr=expr, refs=state_refs(expr)))
            i = end + 1
        else:
            text.append(ch)
            i += 1
    if text:
        parts.append(TextPart(text="".join(text)))
    return tuple(parts)


class BindingSite(NamedTuple):
    """Where a binding expression sits: component path, prop name, expression.

    Trigger arguments use the prop name ``args.<name>``.
    """

    path: str
    prop: str
    expression: str


def _component_sites(component: Component) -> list[BindingSite]:
    sites: list[BindingSite] = []
    props: list[tuple[str, Prop]] = list(component.props.items())
    if component.trigger is not None:
        props += [(f"args.{k}", v) for k, v in component.trigger.args.items()]
    for name, prop in props:
        sites.extend(BindingSite(component.path, name, e) for e in prop.expressions)
    return sites


def binding_sites(panel: NexusPanel) -> list[BindingSite]:
    """Every binding expression of the View in document order, for batch evaluation."""
    return [site for c in panel.view.walk() for site in _component_sites(c)]
