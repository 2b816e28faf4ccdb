"""``parse(xml) -> NexusPanel``: hardened reading plus the NXML structure.

The parser raises only for documents that cannot be NXML at all (malformed XML,
limits, forbidden DTDs, a root that is not ``<NexusPanel>``). Everything it can
recover from (misplaced elements, bad attribute values, malformed bindings) is
recorded on ``NexusPanel.issues`` and reported by :func:`validate`.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from difflib import get_close_matches
from typing import Any, TypeVar

from pydantic import JsonValue

from nexflow.panels.ast import (
    STATE_TYPES,
    Arg,
    Capability,
    Data,
    Handler,
    Logic,
    NexusPanel,
    State,
    StateType,
    Tool,
)
from nexflow.panels.components import CATALOGUE, Catalogue
from nexflow.panels.errors import NXMLSyntaxError, error, warning
from nexflow.panels.values import coerce, zero_value
from nexflow.panels.viewparse import ViewBuilder
from nexflow.panels.xmlread import Element, ParseLimits, read_xml

_ATTRS = {
    "NexusPanel": ("id", "title", "version", "description"),
    "State": ("name", "type", "default", "description"),
    "Tool": ("name", "description", "dangerous"),
    "Arg": ("name", "type", "description", "required", "default"),
    "Http": ("host",), "File": ("path", "mode"), "Clock": (),
    "Data": (), "Logic": (), "View": (), "Capabilities": (), "Handler": (),
}  # fmt: skip
_T = TypeVar("_T")
_PANEL_ID = re.compile(r"[a-z0-9][a-z0-9_-]{0,63}")
_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,63}")
_HOST = re.compile(r"(\*\.)?[A-Za-z0-9-]+(\.[A-Za-z0-9-]+)*(:\d{1,5})?")


class _Builder(ViewBuilder):
    def _check_attrs(self, el: Element) -> None:
        allowed = _ATTRS[el.tag]
        for name in el.attrs:
            if name not in allowed:
                close = get_close_matches(name, allowed, n=1)
                hint = (
                    f'did you mean {close[0]}="..."?'
                    if close
                    else (f"<{el.tag}> takes: {', '.join(allowed) or 'no attributes'}")
                )
                self.issue(
                    warning(
                        "unknown-attribute",
                        f"<{el.tag}> has no attribute {name!r}",
                        *self.attr_at(el, name),
                        hint,
                    )
                )

    def _required(self, el: Element, name: str, example: str) -> str | None:
        value = el.attrs.get(name, "").strip()
        if not value:
            self.issue(
                error(
                    "missing-attribute",
                    f"<{el.tag}> needs a {name}",
                    el.line,
                    el.column,
                    f"write <{el.tag} {name}={example} ...>",
                )
            )
            return None
        return value

    def _name(self, el: Element, example: str) -> str | None:
        name = self._required(el, "name", example)
        if name is not None and not _NAME.fullmatch(name):
            self.issue(
                error(
                    "bad-name",
                    f"{name!r} is not a valid {el.tag} name",
                    *self.attr_at(el, "name"),
                    "use letters, digits and _, starting with a letter (max 64)",
                )
            )
        return name

    def _type(self, el: Element) -> StateType | None:
        raw = self._required(el, "type", '"number"')
        if raw is None:
            return None
        for t in STATE_TYPES:
            if raw == t:
                return t
        close = get_close_matches(raw, STATE_TYPES, n=1)
        hint = f'write type="{close[0]}"' if close else f"use one of: {', '.join(STATE_TYPES)}"
        self.issue(error("bad-type", f"unknown type {raw!r}", *self.attr_at(el, "type"), hint))
        return None

    def _flag(self, el: Element, name: str) -> bool:
        raw = el.attrs.get(name, "false").strip()
        if raw not in ("true", "false"):
            self.issue(
                error(
                    "bad-value",
                    f"{name} must be true or false, not {raw!r}",
                    *self.attr_at(el, name),
                    f'write {name}="true" or {name}="false"',
                )
            )
        return raw == "true"

    def _default(self, el: Element, type_: StateType) -> tuple[JsonValue, str | None]:
        raw = el.attrs.get("default")
        if raw is None:
            return (zero_value(type_) if el.tag == "State" else None), None
        try:
            return coerce(type_, raw), raw
        except ValueError:
            return zero_value(type_), raw  # the validator reports the mismatch

    def state(self, el: Element) -> State | None:
        self._check_attrs(el)
        name, type_ = self._name(el, '"cpu_load"'), self._type(el)
        if name is None or type_ is None:
            return None
        default, raw = self._default(el, type_)
        return State(
            name=name,
            type=type_,
            default=default,
            default_raw=raw,
            description=el.attrs.get("description", ""),
            line=el.line,
            column=el.column,
        )

    def arg(self, el: Element) -> Arg | None:
        self._check_attrs(el)
        name, type_ = self._name(el, '"level"'), self._type(el)
        if name is None or type_ is None:
            return None
        default, raw = self._default(el, type_)
        return Arg(
            name=name,
            type=type_,
            description=el.attrs.get("description", ""),
            required=self._flag(el, "required"),
            default=default,
            default_raw=raw,
            line=el.line,
            column=el.column,
        )

    def tool(self, el: Element) -> Tool | None:
        self._check_attrs(el)
        name = self._name(el, '"restart_node"')
        args: list[Arg] = []
        handler: Handler | None = None
        for child in el.children:
            if child.tag == "Arg":
                if (a := self.arg(child)) is not None:
                    args.append(a)
            elif child.tag == "Handler":
                self._check_attrs(child)
                if handler is not None:
                    self.issue(
                        error(
                            "duplicate-handler",
                            f"tool {name!r} has two <Handler>s",
                            child.line,
                            child.column,
                            "merge them into one",
                        )
                    )
                handler = Handler(
                    source=child.body(), line=child.text_pos[0], column=child.text_pos[1]
                )
            else:
                self.misplaced(child, "Tool")
        if name is None:
            return None
        return Tool(
            name=name,
            description=el.attrs.get("description", "").strip(),
            dangerous=self._flag(el, "dangerous"),
            args=tuple(args),
            handler=handler,
            line=el.line,
            column=el.column,
        )

    def capability(self, el: Element) -> Capability | None:
        self._check_attrs(el)
        if el.tag == "Clock":
            return Capability(kind="clock", line=el.line, column=el.column)
        if el.tag == "Http":
            host = self._required(el, "host", '"api.example.com"')
            if host is not None and not _HOST.fullmatch(host):
                self.issue(
                    error(
                        "bad-value",
                        f"{host!r} is not a host name",
                        *self.attr_at(el, "host"),
                        'write the bare host, e.g. host="api.github.com" (no scheme, no path)',
                    )
                )
            return (
                None
                if host is None
                else Capability(kind="http", target=host, line=el.line, column=el.column)
            )
        path = self._required(el, "path", '"notes/"')
        mode = el.attrs.get("mode", "read")
        if mode not in ("read", "write"):
            self.issue(
                error(
                    "bad-value",
                    f"mode must be read or write, not {mode!r}",
                    *self.attr_at(el, "mode"),
                    'write mode="read" or mode="write"',
                )
            )
            mode = "read"
        if path is not None and (path.startswith("/") or ".." in path.split("/")):
            self.issue(
                error(
                    "bad-value",
                    f"{path!r} leaves the workspace",
                    *self.attr_at(el, "path"),
                    "use a relative path inside the workspace",
                )
            )
        return (
            None
            if path is None
            else Capability(
                kind="file",
                target=path,
                mode="write" if mode == "write" else "read",
                line=el.line,
                column=el.column,
            )
        )

    def panel(self, root: Element) -> NexusPanel:
        self._check_attrs(root)
        self.text_outside(root)
        panel_id = self._required(root, "id", '"server-monitor"') or "untitled"
        if not _PANEL_ID.fullmatch(panel_id):
            self.issue(
                error(
                    "bad-id",
                    f"panel id {panel_id!r} is not a slug",
                    *self.attr_at(root, "id"),
                    'use lowercase letters, digits, - and _, e.g. id="server-monitor"',
                )
            )
        title = root.attrs.get("title", "").strip()
        if not title:
            self.issue(
                warning(
                    "missing-attribute",
                    "<NexusPanel> has no title",
                    root.line,
                    root.column,
                    'add title="..." (shown in chat and on the web)',
                )
            )
        sections: dict[str, Element] = {}
        for el in root.children:
            if el.tag in ("Data", "Logic", "View", "Capabilities"):
                if el.tag in sections:
                    self.issue(
                        error(
                            "duplicate-section",
                            f"second <{el.tag}> section",
                            el.line,
                            el.column,
                            f"merge it into the first <{el.tag}>",
                        )
                    )
                    continue
                sections[el.tag] = el
                self._check_attrs(el)
                self.text_outside(el)
            else:
                self.misplaced(el, "NexusPanel")
        return NexusPanel(
            id=panel_id,
            title=title or panel_id,
            version=root.attrs.get("version"),
            description=root.attrs.get("description"),
            line=root.line,
            column=root.column,
            capabilities=self._section(
                sections.get("Capabilities"), ("Http", "File", "Clock"), self.capability
            ),
            data=Data(
                states=self._section(sections.get("Data"), ("State",), self.state),
                **_pos(sections.get("Data")),
            ),
            logic=Logic(
                tools=self._section(sections.get("Logic"), ("Tool",), self.tool),
                **_pos(sections.get("Logic")),
            ),
            view=self.view(sections.get("View")),
            issues=tuple(self.issues),
        )

    def _section(
        self, el: Element | None, tags: tuple[str, ...], build: Callable[[Element], _T | None]
    ) -> tuple[_T, ...]:
        if el is None:
            return ()
        out: list[_T] = []
        for child in el.children:
            if child.tag in tags:
                if (node := build(child)) is not None:
                    out.append(node)
            else:
                self.misplaced(child, el.tag)
        return tuple(out)


def _pos(el: Element | None) -> dict[str, Any]:
    return {} if el is None else {"line": el.line, "column": el.column}


def parse(
    xml: str, *, limits: ParseLimits | None = None, catalogue: Catalogue = CATALOGUE
) -> NexusPanel:
    """Parse NXML into a :class:`NexusPanel`.

    Raises :class:`NXMLSyntaxError` (not XML, or not a ``<NexusPanel>``) or
    :class:`NXMLLimitError` (too large, too deep, too many elements, DTDs or
    entities). Recoverable problems land in ``NexusPanel.issues``; call
    :func:`nexflow.panels.validate` before using the panel.
    """
    root = read_xml(xml, limits or ParseLimits())
    if root.tag != "NexusPanel":
        raise NXMLSyntaxError(
            [
                error(
                    "wrong-root",
                    f"the root element is <{root.tag}>",
                    root.line,
                    root.column,
                    'wrap the panel in <NexusPanel id="..." title="...">',
                )
            ]
        )
    return _Builder(catalogue).panel(root)
