"""Hardened XML reading: expat with every DTD feature refused and explicit limits.

This is what ``defusedxml`` does (refuse DOCTYPE, entity and notation
declarations, external references) done directly on ``pyexpat`` so that every
element keeps its byte-exact position and its attributes' positions, which
diagnostics need and ``xml.etree`` drops. Nothing here knows NXML.
"""

from __future__ import annotations

import re
from bisect import bisect_right
from dataclasses import dataclass, field
from typing import NoReturn
from xml.parsers import expat

from nexflow.panels.errors import NXMLLimitError, NXMLSyntaxError, error

_E = expat.errors
_ATTR = re.compile(rb"""\s+([^\s=/>]+)\s*=\s*("[^"]*"|'[^']*')""")
_TAG = re.compile(rb"<[^\s/>]+")
_CDATA_HINT = "wrap JavaScript in <![CDATA[ ... ]]> so it may contain < and &"
_HINTS = {
    _E.XML_ERROR_TAG_MISMATCH: "close every element with its own name, e.g. <View>...</View>",
    _E.XML_ERROR_NO_ELEMENTS: "the document ends early: close every element",
    _E.XML_ERROR_UNCLOSED_TOKEN: "the document ends inside a tag: finish it with > or />",
    _E.XML_ERROR_JUNK_AFTER_DOC_ELEMENT: "NXML has one root: put everything inside <NexusPanel>",
    _E.XML_ERROR_UNDEFINED_ENTITY: "only &lt; &gt; &amp; &quot; &apos; exist; write the character",
    _E.XML_ERROR_DUPLICATE_ATTRIBUTE: "give each attribute once",
    _E.XML_ERROR_UNBOUND_PREFIX: "NXML uses no namespace prefixes: <Metric>, not <x:Metric>",
    _E.XML_ERROR_INVALID_TOKEN: "check the quotes; write &lt; for < and &amp; for &",
}


@dataclass(frozen=True, slots=True)
class ParseLimits:
    """Hard limits; exceeding one raises :class:`NXMLLimitError` before any work is wasted."""

    max_bytes: int = 512 * 1024
    max_depth: int = 32
    max_elements: int = 4096
    max_attributes: int = 64


@dataclass(slots=True)
class Element:
    """A generic element with 1-based positions (columns in characters)."""

    tag: str
    attrs: dict[str, str]
    line: int
    column: int
    attr_pos: dict[str, tuple[int, int]] = field(default_factory=dict)
    value_pos: dict[str, tuple[int, int]] = field(default_factory=dict)
    children: list[Element] = field(default_factory=list)
    text: list[str] = field(default_factory=list)
    text_pos: tuple[int, int] = (0, 0)

    def body(self) -> str:
        return "".join(self.text)


class _Positions:
    def __init__(self, data: bytes) -> None:
        self._data = data
        self._starts = [0] + [m.end() for m in re.finditer(rb"\n", data)]

    def at(self, offset: int) -> tuple[int, int]:
        index = bisect_right(self._starts, offset) - 1
        start = self._starts[index]
        chunk = self._data[start:offset]
        col = len(chunk) if chunk.isascii() else len(chunk.decode("utf-8", "replace"))
        return index + 1, col + 1

    def offset(self, line: int, byte_col: int) -> int:
        return self._starts[min(max(line, 1), len(self._starts)) - 1] + byte_col


class _Reader:
    def __init__(self, data: bytes, limits: ParseLimits) -> None:
        self.data = data
        self.limits = limits
        self.pos = _Positions(data)
        self.stack: list[Element] = []
        self.root: Element | None = None
        self.count = 0
        p = expat.ParserCreate(encoding="utf-8")
        p.buffer_text = True
        p.SetParamEntityParsing(expat.XML_PARAM_ENTITY_PARSING_NEVER)
        p.StartDoctypeDeclHandler = self._refuse_dtd
        p.EntityDeclHandler = self._refuse_dtd
        p.UnparsedEntityDeclHandler = self._refuse_dtd
        p.NotationDeclHandler = self._refuse_dtd
        p.ExternalEntityRefHandler = self._refuse_dtd
        p.StartElementHandler = self._start
        p.EndElementHandler = self._end
        p.CharacterDataHandler = self._chars
        self.parser = p

    def _here(self) -> tuple[int, int]:
        return self.pos.at(self.parser.CurrentByteIndex)

    def _limit(self, code: str, message: str, hint: str) -> NoReturn:
        line, col = self._here()
        raise NXMLLimitError([error(code, message, line, col, hint)])

    def _refuse_dtd(self, *_: object) -> NoReturn:
        self._limit(
            "dtd-forbidden",
            "DOCTYPE, entity and notation declarations are not allowed in NXML",
            "remove the <!DOCTYPE ...> block; NXML needs no DTD",
        )

    def _start(self, tag: str, attrs: dict[str, str]) -> None:
        self.count += 1
        if self.count > self.limits.max_elements:
            self._limit(
                "too-many-elements",
                f"more than {self.limits.max_elements} elements",
                "split the panel or use a list state instead of many elements",
            )
        if len(self.stack) >= self.limits.max_depth:
            self._limit(
                "too-deep",
                f"elements nested deeper than {self.limits.max_depth}",
                "flatten the view: nest Layouts a few levels at most",
            )
        if len(attrs) > self.limits.max_attributes:
            self._limit(
                "too-many-attributes",
                f"more than {self.limits.max_attributes} attributes",
                "keep elements to a handful of props",
            )
        start = self.parser.CurrentByteIndex
        line, col = self.pos.at(start)
        el = Element(tag, attrs, line, col)
        end = start
        tag_match = _TAG.match(self.data, start)
        if tag_match:
            end = tag_match.end()
            while (m := _ATTR.match(self.data, end)) is not None:
                name = m.group(1).decode("utf-8", "replace")
                el.attr_pos[name] = self.pos.at(m.start(1))
                el.value_pos[name] = self.pos.at(m.start(2) + 1)
                end = m.end()
        gt = self.data.find(b">", end)
        el.text_pos = self.pos.at(gt + 1 if gt >= 0 else end)
        if self.stack:
            self.stack[-1].children.append(el)
        else:
            self.root = el
        self.stack.append(el)

    def _end(self, _tag: str) -> None:
        self.stack.pop()

    def _chars(self, text: str) -> None:
        if self.stack:
            self.stack[-1].text.append(text)

    def syntax_error(self, exc: expat.ExpatError) -> NXMLSyntaxError:
        offset = self.pos.offset(exc.lineno, exc.offset)
        if self.data[offset : offset + 1] not in (b"<", b"&") and offset > 0:
            offset -= self.data[offset - 1 : offset] in (b"<", b"&")
        line, col = self.pos.at(offset)
        message = expat.ErrorString(exc.code)
        hint = _HINTS.get(message, "check the XML syntax around this position")
        bad = self.data[offset : offset + 1]
        if self.stack and self.stack[-1].tag == "Handler" and bad in (b"<", b"&"):
            hint = _CDATA_HINT
        elif bad == b"<" and message == _E.XML_ERROR_INVALID_TOKEN:
            hint = "a '<' inside an attribute must be written &lt; (or flip the comparison: b > a)"
        elif bad == b"&":
            hint = "write &amp; for a literal '&' (&amp;&amp; for JavaScript's &&)"
        return NXMLSyntaxError([error("xml-syntax", f"malformed XML: {message}", line, col, hint)])


def read_xml(xml: str, limits: ParseLimits) -> Element:
    """Parse ``xml`` into generic elements; raises NXMLSyntaxError or NXMLLimitError."""
    if len(xml) > limits.max_bytes:
        raise NXMLLimitError(
            [
                error(
                    "too-large",
                    f"document larger than {limits.max_bytes} bytes",
                    1,
                    1,
                    "keep panels small; put bulk data in state at runtime",
                )
            ]
        )
    try:
        data = xml.encode("utf-8")
    except UnicodeEncodeError as exc:
        raise NXMLSyntaxError(
            [
                error(
                    "encoding",
                    "text is not valid Unicode",
                    1,
                    exc.start + 1,
                    "remove lone surrogate characters",
                )
            ]
        ) from exc
    if len(data) > limits.max_bytes:
        raise NXMLLimitError(
            [
                error(
                    "too-large",
                    f"document larger than {limits.max_bytes} bytes",
                    1,
                    1,
                    "keep panels small; put bulk data in state at runtime",
                )
            ]
        )
    reader = _Reader(data, limits)
    try:
        reader.parser.Parse(data, True)
    except expat.ExpatError as exc:
        raise reader.syntax_error(exc) from exc
    except RecursionError as exc:  # pragma: no cover - max_depth keeps us far from this
        raise NXMLLimitError(
            [error("too-deep", "document nested too deeply", 1, 1, "flatten the view")]
        ) from exc
    if reader.root is None:  # pragma: no cover - expat reports "no element found" first
        raise NXMLSyntaxError(
            [
                error(
                    "xml-syntax",
                    "empty document",
                    1,
                    1,
                    'start with <NexusPanel id="..." title="...">',
                )
            ]
        )
    return reader.root
