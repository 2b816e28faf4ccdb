"""Model Markdown → Telegram HTML, and splitting into messages Telegram accepts.

Everything that is not markup we generate is escaped, so model output can never break a
send. Supported: fenced code blocks, inline code, **bold**/__bold__, *italic*/_italic_,
~~strike~~, [links](http://…), ``#`` headings (bold), ``>`` quotes, ``-``/``*`` bullets.
:func:`split_html` cuts at line boundaries where it can and closes/reopens the tags that
are open at a cut, so every chunk is balanced HTML of at most ``limit`` visible UTF-16
code units (Telegram's measure).
"""

from __future__ import annotations

import re
from html import escape, unescape

MESSAGE_LIMIT = 4096
CAPTION_LIMIT = 1024

_FENCE = re.compile(r"^```[ \t]*([\w+#.-]*)[^\n]*\n(.*?)(?:^```[ \t]*$|\Z)", re.M | re.S)
_INLINE = re.compile(
    r"(?P<tick>`+)(?P<code>.+?)(?P=tick)"
    r"|\[(?P<label>[^\]\n]+)\]\((?P<url>(?:https?|tg|mailto):[^)\s]+)\)"
    r"|\*\*(?P<bold>(?!\s).+?(?<!\s))\*\*"
    r"|(?<!\w)__(?P<bold2>(?!\s).+?(?<!\s))__(?!\w)"
    r"|~~(?P<strike>(?!\s).+?(?<!\s))~~"
    r"|(?<![\w*])\*(?P<italic>(?![\s*]).*?(?<![\s*]))\*(?![\w*])"
    r"|(?<![\w_])_(?P<italic2>(?![\s_]).*?(?<![\s_]))_(?![\w_])"
)
_HEADING = re.compile(r"^\s{0,3}#{1,6}\s+(.*?)\s*#*\s*$")
_BULLET = re.compile(r"^(\s*)[-*+]\s+(.*)$")
_QUOTE = re.compile(r"^\s{0,3}>\s?(.*)$")
_TOKEN = re.compile(r"<(/?)([a-z-]+)[^>]*>|&[#\w]+;|[\ud800-\udbff][\udc00-\udfff]|.", re.S)


def markdown_to_html(text: str) -> str:
    """Telegram HTML for the model's Markdown; unknown syntax passes through escaped."""
    parts: list[str] = []
    pos = 0
    for match in _FENCE.finditer(text):
        parts.append(_blocks(text[pos : match.start()]))
        lang, body = match.group(1), match.group(2).rstrip("\n")
        code = escape(body, quote=False)
        cls = f' class="language-{escape(lang)}"' if lang else ""
        parts.append(f"<pre><code{cls}>{code}</code></pre>" if body else "")
        pos = match.end()
    parts.append(_blocks(text[pos:]))
    return "".join(parts).strip("\n")


def _blocks(text: str) -> str:
    lines: list[str] = []
    quote: list[str] = []
    for line in text.split("\n"):
        quoted = _QUOTE.match(line)
        if quoted:
            quote.append(inline(quoted.group(1)))
            continue
        if quote:
            lines.append(f"<blockquote>{chr(10).join(quote)}</blockquote>")
            quote = []
        if heading := _HEADING.match(line):
            lines.append(f"<b>{inline(heading.group(1))}</b>")
        elif bullet := _BULLET.match(line):
            lines.append(f"{bullet.group(1)}• {inline(bullet.group(2))}")
        else:
            lines.append(inline(line))
    if quote:
        lines.append(f"<blockquote>{chr(10).join(quote)}</blockquote>")
    return "\n".join(lines)


def inline(text: str) -> str:
    out: list[str] = []
    pos = 0
    for m in _INLINE.finditer(text):
        out.append(escape(text[pos : m.start()], quote=False))
        if m.group("code") is not None:
            out.append(f"<code>{escape(m.group('code'), quote=False)}</code>")
        elif m.group("url") is not None:
            out.append(f'<a href="{escape(m.group("url"))}">{inline(m.group("label"))}</a>')
        elif (bold := m.group("bold") or m.group("bold2")) is not None:
            out.append(f"<b>{inline(bold)}</b>")
        elif m.group("strike") is not None:
            out.append(f"<s>{inline(m.group('strike'))}</s>")
        else:
            out.append(f"<i>{inline(m.group('italic') or m.group('italic2') or '')}</i>")
        pos = m.end()
    out.append(escape(text[pos:], quote=False))
    return "".join(out)


def to_plain(html: str) -> str:
    """The visible text of our HTML (the fallback when Telegram refuses the markup)."""
    return unescape(re.sub(r"<[^>]*>", "", html))


def _width(token: str) -> int:
    if token.startswith("<"):
        return 0
    if token.startswith("&") and len(token) > 1:
        return 1
    return len(token.encode("utf-16-le")) // 2


def split_html(html: str, limit: int = MESSAGE_LIMIT) -> list[str]:
    """Balanced chunks of at most ``limit`` visible units, cut at newlines where possible
    (inside a too-long line: at its last space, else anywhere between tokens)."""
    lines: list[list[str]] = [[]]
    for match in _TOKEN.finditer(html):
        lines[-1].append(match.group(0))
        if match.group(0) == "\n":
            lines.append([])
    chunks: list[str] = []
    current: list[str] = []
    used = 0

    def flush(cut: int) -> None:
        nonlocal current, used
        head, tail = current[:cut], current[cut:]
        still_open = _open_tags(head)
        chunk = "".join(head) + "".join(f"</{name}>" for name, _ in reversed(still_open))
        if to_plain(chunk).strip():
            chunks.append(chunk.strip("\n"))
        current = [tag for _, tag in still_open] + tail
        used = sum(_width(t) for t in current)

    for line in lines:
        width = sum(_width(t) for t in line)
        if used + width > limit and to_plain("".join(current)).strip():
            flush(len(current))
        if used + width <= limit:
            current.extend(line)
            used += width
            continue
        line_start = len(current)
        for token in line:
            token_width = _width(token)
            if used + token_width > limit:
                spaces = [i for i in range(line_start, len(current)) if current[i] == " "]
                cut = spaces[-1] + 1 if spaces else len(current)
                tail = sum(_width(t) for t in current[cut:])
                flush(cut if tail + token_width <= limit else len(current))
                line_start = 0  # what is left is reopened tags and this line's tail
            current.append(token)
            used += token_width
    if to_plain("".join(current)).strip():
        chunks.append("".join(current).strip("\n"))
    return chunks


def _open_tags(tokens: list[str]) -> list[tuple[str, str]]:
    stack: list[tuple[str, str]] = []
    for token in tokens:
        m = re.match(r"<(/?)([a-z-]+)", token)
        if m is None:
            continue
        if m.group(1):
            if stack and stack[-1][0] == m.group(2):
                stack.pop()
        else:
            stack.append((m.group(2), token))
    return stack
