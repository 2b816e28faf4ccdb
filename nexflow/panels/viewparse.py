"""Building the View namespace: components, props, bindings and triggers."""

from __future__ import annotations

import textwrap

from nexflow.panels.ast import Component, Part, Prop, TextPart, Trigger, View
from nexflow.panels.bindings import TemplateError, split_template
from nexflow.panels.components import Catalogue
from nexflow.panels.errors import Diagnostic, error, warning
from nexflow.panels.xmlread import Element

_HOME = {
    "Data": "<NexusPanel>", "Logic": "<NexusPanel>", "View": "<NexusPanel>",
    "Capabilities": "<NexusPanel>", "State": "<Data>", "Tool": "<Logic>",
    "Handler": "a <Tool> in <Logic>", "Http": "<Capabilities>", "File": "<Capabilities>",
    "Clock": "<Capabilities>", "NexusPanel": "the top of the document (only once)",
    "Arg": "a <Tool> in <Logic>",
}  # fmt: skip
_CONTENTS = {
    "NexusPanel": "<Capabilities>, <Data>, <Logic> and <View>",
    "Data": "<State> elements", "Logic": "<Tool> elements",
    "Capabilities": "<Http>, <File> and <Clock>", "Tool": "<Arg> elements and one <Handler>",
}  # fmt: skip


class Recorder:
    """Collects the issues the parser recovers from."""

    def __init__(self, catalogue: Catalogue) -> None:
        self.catalogue = catalogue
        self.issues: list[Diagnostic] = []

    def issue(self, d: Diagnostic) -> None:
        self.issues.append(d)

    def attr_at(self, el: Element, name: str) -> tuple[int, int]:
        return el.attr_pos.get(name, (el.line, el.column))

    def misplaced(self, el: Element, parent: str) -> None:
        if el.tag in _HOME:
            self.issue(
                error(
                    "wrong-namespace",
                    f"<{el.tag}> cannot appear inside <{parent}>",
                    el.line,
                    el.column,
                    f"move it into {_HOME[el.tag]}",
                )
            )
        elif el.tag in self.catalogue:
            self.issue(
                error(
                    "wrong-namespace",
                    f"component <{el.tag}> cannot appear inside <{parent}>",
                    el.line,
                    el.column,
                    "move it into <View>",
                )
            )
        else:
            self.issue(
                error(
                    "unknown-element",
                    f"<{el.tag}> is not an NXML element",
                    el.line,
                    el.column,
                    f"<{parent}> holds {_CONTENTS.get(parent, 'components')}",
                )
            )

    def text_outside(self, el: Element) -> None:
        if el.body().strip():
            self.issue(
                warning(
                    "unexpected-text",
                    f"text inside <{el.tag}> is ignored",
                    *el.text_pos,
                    "put text in a <Text> or <Markdown> in <View>",
                )
            )


class ViewBuilder(Recorder):
    """Turns View elements into :class:`Component` nodes."""

    def prop(
        self,
        name: str,
        raw: str,
        at: tuple[int, int],
        value_at: tuple[int, int],
        *,
        literal: bool = False,
    ) -> Prop:
        parts: tuple[Part, ...]
        if literal:
            parts = (TextPart(text=raw),)
        else:
            try:
                parts = split_template(raw)
            except TemplateError as exc:
                col = value_at[1] + exc.offset if "\n" not in raw[: exc.offset] else value_at[1]
                self.issue(
                    error("binding-syntax", f"{name}: {exc.message}", value_at[0], col, exc.hint)
                )
                parts = (TextPart(text=raw),)
        return Prop(value=raw, parts=parts, line=at[0], column=at[1])

    def component(self, el: Element, path: str) -> Component | None:
        if el.tag in _HOME or el.tag == "Arg":
            self.issue(
                error(
                    "wrong-namespace",
                    f"<{el.tag}> cannot appear inside <View>",
                    el.line,
                    el.column,
                    f"move it into {_HOME.get(el.tag, '<Tool>')}"
                    if el.tag != "Arg"
                    else "put <Arg> inside an element with trigger=...",
                )
            )
            return None
        spec = self.catalogue.get(el.tag)
        props: dict[str, Prop] = {}
        trigger_tool: str | None = None
        for name, raw in el.attrs.items():
            at = self.attr_at(el, name)
            if name == "trigger":
                trigger_tool = raw.strip()
                continue
            pspec = spec.prop_map.get(name) if spec else None
            literal = pspec is not None and not pspec.bindable and "{" not in raw
            props[name] = self.prop(name, raw, at, el.value_pos.get(name, at), literal=literal)
        body = textwrap.dedent(el.body()).strip()
        if body and spec is not None and spec.body_prop is not None:
            if spec.body_prop in props:
                self.issue(
                    error(
                        "duplicate-prop",
                        f"{spec.body_prop} given as attribute and as text",
                        *el.text_pos,
                        "keep one of them",
                    )
                )
            else:
                props[spec.body_prop] = self.prop(
                    spec.body_prop, body, el.text_pos, el.text_pos, literal=spec.raw_body
                )
        elif body and spec is not None:
            self.issue(
                warning(
                    "unexpected-text",
                    f"text inside <{el.tag}> is ignored",
                    *el.text_pos,
                    f'put it in a prop, e.g. <{el.tag} label="..." />',
                )
            )
        children: list[Component] = []
        args: dict[str, Prop] = {}
        for child in el.children:
            if child.tag == "Arg" and trigger_tool is not None:
                name = child.attrs.get("name", "").strip()
                if not name or "value" not in child.attrs:
                    self.issue(
                        error(
                            "missing-attribute",
                            "a trigger <Arg> needs name and value",
                            child.line,
                            child.column,
                            '<Arg name="level" value="error" />',
                        )
                    )
                    continue
                at = self.attr_at(child, "value")
                args[name] = self.prop(
                    name,
                    child.attrs["value"],
                    (child.line, child.column),
                    child.value_pos.get("value", at),
                )
            elif (c := self.component(child, f"{path}/{len(children)}")) is not None:
                children.append(c)
        trigger = None
        if trigger_tool is not None:
            line, col = self.attr_at(el, "trigger")
            trigger = Trigger(tool=trigger_tool, args=args, line=line, column=col)
        return Component(
            type=el.tag,
            path=path,
            props=props,
            trigger=trigger,
            children=tuple(children),
            line=el.line,
            column=el.column,
        )

    def view(self, el: Element | None) -> View:
        if el is None:
            return View()
        children: list[Component] = []
        for child in el.children:
            if (c := self.component(child, f"view/{len(children)}")) is not None:
                children.append(c)
        return View(children=tuple(children), line=el.line, column=el.column)
