"""What the fake Telegram Bot API checks and records: Telegram-HTML validation, UTF-16
lengths and entities as the real server computes them, the :class:`Sent` record of a bot
message, scripted failures and the Bot API's error answer."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from html import unescape
from typing import Any

from aiohttp import web

_TAGS = {"b", "strong", "i", "em", "u", "ins", "s", "strike", "del", "a", "code", "pre"}
_TAGS |= {"span", "tg-spoiler", "blockquote", "tg-emoji"}
_TAG = re.compile(r"<(/?)([a-zA-Z][a-zA-Z0-9-]*)((?:\s+[^<>]*)?)>")
_ENTITY = re.compile(r"&(?:lt|gt|amp|quot|#\d+|#x[0-9a-fA-F]+);")
MAX_TEXT = 4096
MAX_CAPTION = 1024


class HTMLError(ValueError):
    pass


def parse_html(text: str) -> str:
    """The visible text of a Telegram-HTML message; :class:`HTMLError` where the real server
    answers "can't parse entities" (unknown or unbalanced tags, a bare ``<`` or ``&``)."""
    stack: list[str] = []
    out: list[str] = []
    pos = 0
    while pos < len(text):
        ch = text[pos]
        if ch == "<":
            match = _TAG.match(text, pos)
            if match is None:
                raise HTMLError(f"Unsupported start tag at byte offset {pos}")
            closing, name = match.group(1), match.group(2).lower()
            if name not in _TAGS:
                raise HTMLError(f'Unsupported start tag "{name}" at byte offset {pos}')
            if closing:
                if not stack or stack[-1] != name:
                    raise HTMLError(f'Unmatched end tag at byte offset {pos}, expected "</{name}>"')
                stack.pop()
            else:
                stack.append(name)
            pos = match.end()
        elif ch == "&":
            match = _ENTITY.match(text, pos)
            if match is None:
                raise HTMLError(f"Unsupported HTML entity at byte offset {pos}")
            out.append(unescape(match.group(0)))
            pos = match.end()
        elif ch == ">":
            raise HTMLError(f"Unexpected end tag at byte offset {pos}")
        else:
            out.append(ch)
            pos += 1
    if stack:
        raise HTMLError(f'Can\'t find end tag corresponding to start tag "{stack[-1]}"')
    return "".join(out)


def utf16_len(text: str) -> int:
    return len(text.encode("utf-16-le")) // 2


def entities(text: str) -> list[dict[str, Any]]:
    """``mention`` and ``bot_command`` entities, as Telegram computes them (UTF-16)."""
    found: list[dict[str, Any]] = []
    for kind, pattern in (
        ("mention", r"@[A-Za-z0-9_]{5,32}"),
        ("bot_command", r"^/[A-Za-z0-9_]+(?:@[A-Za-z0-9_]+)?"),
    ):
        for match in re.finditer(pattern, text):
            offset = utf16_len(text[: match.start()])
            found.append({"type": kind, "offset": offset, "length": utf16_len(match.group(0))})
    return sorted(found, key=lambda e: int(e["offset"]))


def check_text(text: str, parse_mode: str | None, limit: int = MAX_TEXT) -> None:
    """Refuse a text (or, with ``limit=MAX_CAPTION``, a caption) as the real server does."""
    visible = text
    if parse_mode == "HTML":
        try:
            visible = parse_html(text)
        except HTMLError as exc:
            raise APIError(400, f"Bad Request: can't parse entities: {exc}") from exc
    if not visible.strip() and limit == MAX_TEXT:
        raise APIError(400, "Bad Request: message text is empty")
    if utf16_len(visible) > limit:
        what = "message is too long" if limit == MAX_TEXT else "message caption is too long"
        raise APIError(400, f"Bad Request: {what}")


@dataclass
class Sent:
    """One message the bot sent (and its later edits)."""

    chat_id: int
    message_id: int
    text: str
    parse_mode: str | None = None
    reply_markup: dict[str, Any] | None = None
    reply_to_message_id: int | None = None
    document: tuple[str, bytes] | None = None  # (file name, content) for sendDocument
    edits: list[str] = field(default_factory=list)

    @property
    def buttons(self) -> list[dict[str, Any]]:
        rows = (self.reply_markup or {}).get("inline_keyboard", [])
        return [button for row in rows for button in row]


@dataclass
class Failure:
    """A scripted error answer (:meth:`FakeTelegram.fail`)."""

    status: int
    description: str
    retry_after: int | None
    after: int = 0  # calls to let through first


class APIError(Exception):
    """A Bot API method refuses the call; answered as ``{"ok": false, ...}``."""

    def __init__(self, status: int, description: str) -> None:
        super().__init__(description)
        self.status = status
        self.description = description


def error_response(status: int, description: str, retry_after: int | None = None) -> web.Response:
    body: dict[str, Any] = {"ok": False, "error_code": status, "description": description}
    if retry_after is not None:
        body["parameters"] = {"retry_after": retry_after}
    return web.json_response(body, status=status)
