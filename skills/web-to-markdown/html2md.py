"""HTML to readable Markdown with ``html.parser`` only (roughly, as a reader would want).

The page is parsed into a small tree (closing tags the HTML left implicit: ``p``,
``li``, ``td``...), scripts, styles, navigation and other chrome are dropped, and the
``main`` or ``article`` element is kept when the page has one. Headings, paragraphs,
links (made absolute), emphasis, inline code, code blocks (with their language),
lists (nested), block quotes, images with alt text and tables come out as Markdown.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from html.parser import HTMLParser
from urllib.parse import urljoin, urlsplit

DROP = frozenset(
    [
        "script",
        "style",
        "noscript",
        "template",
        "svg",
        "canvas",
        "nav",
        "iframe",
        "object",
        "embed",
        "head",
        "button",
        "select",
        "option",
        "textarea",
        "form",
        "aside",
        "footer",
        "dialog",
        "math",
    ]
)
VOID = frozenset(
    [
        "area",
        "base",
        "br",
        "col",
        "embed",
        "hr",
        "img",
        "input",
        "link",
        "meta",
        "param",
        "source",
        "track",
        "wbr",
    ]
)
BLOCK = frozenset(
    [
        "p",
        "div",
        "section",
        "header",
        "main",
        "article",
        "figure",
        "figcaption",
        "address",
        "details",
        "summary",
        "dl",
        "dt",
        "dd",
        "fieldset",
        "center",
        "body",
        "html",
    ]
)
# An open tag closed by the start of another (HTML's implied end tags, roughly).
IMPLIED = {
    "p": {"p"},
    "li": {"li"},
    "dt": {"dt", "dd"},
    "dd": {"dt", "dd"},
    "tr": {"tr", "td", "th"},
    "td": {"td", "th"},
    "th": {"td", "th"},
    "thead": {"tbody", "thead"},
    "tbody": {"tbody", "thead"},
}
SCOPES = frozenset({"ul", "ol", "table", "dl", "blockquote", "div", "section", "article"})
PRE_MARK = "\x00PRE{}\x00"
INDENT = "\x01"  # list indentation, kept from line trimming until the end
MAX_DEPTH = 100  # deeper elements are flattened: the renderer recurses per level


@dataclass
class Node:
    tag: str
    attrs: dict[str, str] = field(default_factory=dict)
    children: list[Node | str] = field(default_factory=list)


class TreeBuilder(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.root = Node("#root")
        self.stack = [self.root]
        self.title = ""
        self.base: str | None = None
        self._in_title = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = {k: v or "" for k, v in attrs}
        if tag == "title":
            self._in_title = True
        if tag == "base" and a.get("href") and self.base is None:
            self.base = a["href"]
        closes = IMPLIED.get(tag)
        if closes:
            cut = None
            for i in range(len(self.stack) - 1, 0, -1):
                open_tag = self.stack[i].tag
                if open_tag in SCOPES:
                    break
                if open_tag in closes:
                    cut = i  # the outermost one: a new <tr> closes its <td> and the <tr>
            if cut is not None:
                del self.stack[cut:]
        node = Node(tag, a)
        self.stack[-1].children.append(node)
        if tag not in VOID and len(self.stack) < MAX_DEPTH:
            self.stack.append(node)

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.handle_starttag(tag, attrs)
        if tag not in VOID and self.stack[-1].tag == tag:
            self.stack.pop()

    def handle_endtag(self, tag: str) -> None:
        if tag == "title":
            self._in_title = False
        for i in range(len(self.stack) - 1, 0, -1):
            if self.stack[i].tag == tag:
                del self.stack[i:]
                return

    def handle_data(self, data: str) -> None:
        if self._in_title:
            self.title += data
        self.stack[-1].children.append(data)


@dataclass
class Page:
    title: str
    markdown: str


def convert(html: str, url: str) -> Page:
    builder = TreeBuilder()
    builder.feed(html)
    builder.close()
    base = urljoin(url, builder.base) if builder.base else url
    focus = find(builder.root, "main") or find(builder.root, "article") or builder.root
    r = Renderer(base)
    text = r.finish(r.render(focus))
    title = " ".join(builder.title.split())
    if not title and (h1 := find(builder.root, "h1")):
        title = " ".join(r.inline(h1).split())
    return Page(title, text)


def find(node: Node, tag: str) -> Node | None:
    for child in node.children:
        if isinstance(child, Node) and child.tag not in DROP:
            if child.tag == tag:
                return child
            if found := find(child, tag):
                return found
    return None


class Renderer:
    def __init__(self, base: str) -> None:
        self.base = base
        self.pres: list[str] = []

    def render(self, node: Node) -> str:
        return "".join(self.piece(c) for c in node.children)

    def inline(self, node: Node) -> str:
        return re.sub(r"\s*\n\s*", " ", self.render(node)).strip()

    def piece(self, item: Node | str) -> str:
        if isinstance(item, str):
            return re.sub(r"\s+", " ", item.replace("\x00", "").replace(INDENT, ""))
        tag = item.tag
        if tag in DROP or item.attrs.get("hidden") is not None or _hidden(item):
            return ""
        method = getattr(self, f"tag_{tag}", None)
        if method is not None:
            return str(method(item))
        if re.fullmatch(r"h[1-6]", tag):
            text = self.inline(item)
            return f"\n\n{'#' * int(tag[1])} {text}\n\n" if text else ""
        if tag in BLOCK:
            return f"\n\n{self.render(item)}\n\n"
        return self.render(item)

    def wrap(self, node: Node, mark: str) -> str:
        inner = self.render(node)
        core = inner.strip()
        if not core:
            return inner
        lead = " " if inner[:1].isspace() else ""
        trail = " " if inner[-1:].isspace() else ""
        return f"{lead}{mark}{core}{mark}{trail}"

    def tag_strong(self, n: Node) -> str:
        return self.wrap(n, "**")

    tag_b = tag_strong

    def tag_em(self, n: Node) -> str:
        return self.wrap(n, "*")

    tag_i = tag_em

    def tag_code(self, n: Node) -> str:
        text = text_of(n).strip()
        fence = "``" if "`" in text else "`"
        return f"{fence}{text}{fence}" if text else ""

    def tag_br(self, n: Node) -> str:
        return "\n"

    def tag_hr(self, n: Node) -> str:
        return "\n\n---\n\n"

    def tag_a(self, n: Node) -> str:
        text = self.inline(n)
        href = n.attrs.get("href", "").strip()
        if not text or not href or href.startswith("#"):
            return self.render(n)
        target = urljoin(self.base, href)
        if urlsplit(target).scheme not in ("http", "https", "mailto"):
            return text
        return f"[{text}]({target.replace(' ', '%20').replace(')', '%29')})"

    def tag_img(self, n: Node) -> str:
        alt = " ".join(n.attrs.get("alt", "").split())
        src = n.attrs.get("src", "").strip()
        if not alt or not src or src.startswith("data:"):
            return ""
        return f"![{alt}]({urljoin(self.base, src).replace(' ', '%20')})"

    def tag_pre(self, n: Node) -> str:
        code = text_of(n).strip("\n")
        lang = language(n) or next(
            (language(c) for c in n.children if isinstance(c, Node) and c.tag == "code"), ""
        )
        fence = "````" if "```" in code else "```"
        self.pres.append(f"{fence}{lang}\n{code}\n{fence}")
        return f"\n\n{PRE_MARK.format(len(self.pres) - 1)}\n\n"

    def tag_blockquote(self, n: Node) -> str:
        body = tidy(self.render(n))
        quoted = "\n".join(f"> {line}".rstrip() for line in body.split("\n"))
        return f"\n\n{quoted}\n\n"

    def tag_ul(self, n: Node) -> str:
        return self.listing(n, ordered=False)

    def tag_ol(self, n: Node) -> str:
        return self.listing(n, ordered=True)

    def listing(self, n: Node, *, ordered: bool) -> str:
        start = n.attrs.get("start", "1")
        number = int(start) if start.isascii() and start.isdigit() else 1
        lines = []
        for child in n.children:
            if not isinstance(child, Node) or child.tag in DROP:
                continue
            body = tidy(self.render(child) if child.tag == "li" else self.piece(child))
            if not body:
                continue
            body = re.sub(r"\n{2,}", "\n", body)
            marker = f"{number}. " if ordered else "- "
            number += 1
            pad = INDENT * len(marker)
            lines.append(marker + body.replace("\n", "\n" + pad))
        return "\n\n" + "\n".join(lines) + "\n\n" if lines else ""

    def tag_table(self, n: Node) -> str:
        rows = []
        for tr in rows_of(n):
            cells = [
                self.inline(c).replace("|", "\\|")
                for c in tr.children
                if isinstance(c, Node) and c.tag in ("td", "th")
            ]
            if any(cells):
                rows.append(cells)
        if not rows:
            return ""
        width = max(len(r) for r in rows)
        rows = [r + [""] * (width - len(r)) for r in rows]
        out = ["| " + " | ".join(rows[0]) + " |", "|" + " --- |" * width]
        out += ["| " + " | ".join(r) + " |" for r in rows[1:]]
        caption = find(n, "caption")
        head = f"{self.inline(caption)}\n\n" if caption else ""
        return "\n\n" + head + "\n".join(out) + "\n\n"

    def tag_caption(self, n: Node) -> str:
        return ""

    def finish(self, text: str) -> str:
        text = tidy(text)

        def restore(match: re.Match[str]) -> str:
            prefix, index = match.group(1), int(match.group(2))
            return "\n".join((prefix + line).rstrip() for line in self.pres[index].split("\n"))

        text = re.sub(r"^(.*?)\x00PRE(\d+)\x00", restore, text, flags=re.M)
        return text.replace(INDENT, " ")


def rows_of(table: Node) -> list[Node]:
    found: list[Node] = []
    for child in table.children:
        if not isinstance(child, Node):
            continue
        if child.tag == "tr":
            found.append(child)
        elif child.tag in ("thead", "tbody", "tfoot"):
            found += rows_of(child)
    return found


def text_of(node: Node) -> str:
    parts = []
    for child in node.children:
        if isinstance(child, str):
            parts.append(child)
        elif child.tag == "br":
            parts.append("\n")
        elif child.tag not in DROP:
            parts.append(text_of(child))
    return "".join(parts)


def language(node: Node) -> str:
    for cls in node.attrs.get("class", "").split():
        for prefix in ("language-", "lang-"):
            if cls.startswith(prefix) and re.fullmatch(r"[\w+#.-]{1,20}", cls[len(prefix) :]):
                return cls[len(prefix) :]
    return ""


def _hidden(node: Node) -> bool:
    style = node.attrs.get("style", "").replace(" ", "").lower()
    return "display:none" in style or node.attrs.get("aria-hidden") == "true"


def tidy(text: str) -> str:
    """Trim every line, at most one blank line in a row, none at the ends."""
    lines = [re.sub(r" {2,}", " ", line.strip()) for line in text.split("\n")]
    return re.sub(r"\n{3,}", "\n\n", "\n".join(lines)).strip()
