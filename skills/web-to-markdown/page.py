"""web-to-markdown: fetch one allowlisted page and return it as readable Markdown.

The URL is the model's choice, so it goes through http-request's allowlist policy
(NEXFLOW_HTTP_ALLOW, private addresses refused, every redirect checked, size and time
capped). HTML is converted by ``html2md`` (html.parser only); plain text and Markdown
pass through. The result is cut at ``max_chars`` with a note saying how much is left.
"""

from __future__ import annotations

import re
import sys
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "_lib"))
sys.path.insert(0, str(Path(__file__).resolve().parent))
import html2md
import skillkit
import webkit

CHARS_DEFAULT = 20_000
CHARS_LIMIT = 100_000
TIMEOUT_DEFAULT = 15.0
HTML_TYPES = ("text/html", "application/xhtml+xml")
TEXT_TYPES = ("text/plain", "text/markdown", "text/x-markdown")
META_CHARSET = re.compile(rb"""<meta[^>]+charset=["']?([\w-]{1,40})""", re.I)


def positive(args: dict[str, Any], key: str, default: float, limit: float) -> float:
    value = args.get(key, default)
    if not isinstance(value, int | float) or isinstance(value, bool) or not 0 < value <= limit:
        raise skillkit.Refused(f"{key!r} must be a number above 0 and at most {limit:g}")
    return value


def decode(resp: webkit.Response) -> str:
    if "charset=" not in resp.headers.get("content-type", "").lower():
        found = META_CHARSET.search(resp.body[:4096])
        if found:
            return resp.text(fallback=found.group(1).decode("ascii"))
    return resp.text()


def cut(text: str, limit: int) -> tuple[str, bool]:
    if len(text) <= limit:
        return text, False
    head = text[:limit]
    boundary = head.rfind("\n\n")
    if boundary > limit // 2:
        head = head[:boundary]
    left = len(text) - len(head)
    note = f"\n\n[… cut here: {left} more characters; ask again with a larger max_chars]"
    return head.rstrip() + note, True


def run(args: dict[str, Any]) -> dict[str, Any]:
    url = args.get("url")
    if not isinstance(url, str) or not url.strip():
        raise skillkit.Refused("'url' must be an http(s) URL")
    limit = int(positive(args, "max_chars", CHARS_DEFAULT, CHARS_LIMIT))
    timeout = positive(args, "timeout_sec", TIMEOUT_DEFAULT, webkit.MAX_TIMEOUT)
    policy = webkit.allowlist(args.get("allow_hosts"))
    resp = webkit.request(
        url.strip(),
        policy,
        headers={"Accept": "text/html,application/xhtml+xml,text/plain;q=0.8,*/*;q=0.1"},
        max_bytes=webkit.MAX_BYTES,
        timeout=timeout,
    )
    if resp.status >= 400:
        raise skillkit.Failed(f"{resp.url} answered {resp.status}")
    kind = resp.content_type
    if kind in HTML_TYPES or (not kind and resp.body.lstrip()[:1] == b"<"):
        page = html2md.convert(decode(resp), resp.url)
        title, markdown = page.title, page.markdown
    elif kind in TEXT_TYPES:
        title, markdown = "", resp.text().strip()
    else:
        raise skillkit.Failed(f"{resp.url} is {kind or 'of no stated type'}, not a web page")
    total = len(markdown)
    markdown, truncated = cut(markdown, limit)
    return {
        "url": resp.url,
        "status": resp.status,
        "title": webkit.clip(title, 300),
        "markdown": markdown,
        "chars": total,
        "truncated": truncated,
    }


if __name__ == "__main__":
    skillkit.main("web-to-markdown", run)
