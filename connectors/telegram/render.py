"""Typed outbound → Telegram messages (HTML chunks + inline keyboard), and the callback
data of the buttons we attach.

Callback data (at most 64 bytes): ``c:<id>`` confirm, ``x:<id>`` cancel, ``a:<id>`` /
``r:<id>`` accept / reject a patch, ``p:<action>`` a panel button, ``t:<token>`` a panel
button whose action is too long to embed (looked up in :class:`ActionTokens`, which lives
as long as the process).
"""

from __future__ import annotations

import secrets
import time
from collections import OrderedDict
from dataclasses import dataclass
from html import escape

from aiogram.types import InlineKeyboardButton, InlineKeyboardMarkup

from connectors.telegram.format import markdown_to_html, split_html
from nexflow.bus.events import (
    ButtonSpec,
    ConfirmationOut,
    FileOut,
    Outbound,
    PanelSnapshotOut,
    PatchReviewOut,
    TextOut,
)

CALLBACK_LIMIT = 64


@dataclass(frozen=True, slots=True)
class Rendered:
    chunks: tuple[str, ...]  # HTML, each within Telegram's limit
    markup: InlineKeyboardMarkup | None = None  # attached to the last chunk


class ActionTokens:
    """Short stand-ins for panel actions longer than callback data allows."""

    def __init__(self, capacity: int = 4096) -> None:
        self._actions: OrderedDict[str, str] = OrderedDict()
        self._capacity = capacity

    def data_for(self, action: str) -> str:
        data = f"p:{action}"
        if len(data.encode()) <= CALLBACK_LIMIT:
            return data
        token = secrets.token_hex(8)
        self._actions[token] = action
        if len(self._actions) > self._capacity:
            self._actions.popitem(last=False)
        return f"t:{token}"

    def action(self, token: str) -> str | None:
        return self._actions.get(token)


def callback_message(data: str, tokens: ActionTokens) -> str | None:
    """The chat command a button press stands for; None for unknown or expired data."""
    kind, _, value = data.partition(":")
    if not value:
        return None
    match kind:
        case "c":
            return f"/confirm {value}"
        case "x":
            return f"/cancel {value}"
        case "a":
            return f"/accept {value}"
        case "r":
            return f"/reject {value}"
        case "p":
            return f"/press {value}"
        case "t":
            action = tokens.action(value)
            return f"/press {action}" if action is not None else None
    return None


def render(out: Outbound, tokens: ActionTokens, now: float | None = None) -> Rendered:
    match out:
        case TextOut():
            return Rendered(tuple(split_html(markdown_to_html(out.text))))
        case PanelSnapshotOut():
            html = f"<b>{escape(out.title)}</b>\n{markdown_to_html(out.text)}"
            return Rendered(tuple(split_html(html)), _panel_keyboard(out.buttons, tokens))
        case ConfirmationOut():
            left = out.expires_at - (time.time() if now is None else now)
            expiry = f"\n<i>Expires in {max(1, round(left / 60))} min.</i>" if left > 0 else ""
            html = (
                f"<b>Confirmation needed:</b> {escape(out.title)}\n"
                f"<pre>{escape(out.detail)}</pre>{expiry}"
            )
            keyboard = InlineKeyboardMarkup(
                inline_keyboard=[
                    [
                        InlineKeyboardButton(
                            text="✅ Confirm", callback_data=f"c:{out.confirmation_id}"
                        ),
                        InlineKeyboardButton(
                            text="✖ Cancel", callback_data=f"x:{out.confirmation_id}"
                        ),
                    ]
                ]
            )
            return Rendered(tuple(split_html(html)), keyboard)
        case PatchReviewOut():
            decide = _patch_keyboard(out.patch_id)
            html = _patch_html(out, commands=decide is None)
            return Rendered(tuple(split_html(html)), decide)
        case FileOut():
            return Rendered(tuple(split_html(markdown_to_html(out.caption))))


def _panel_keyboard(
    buttons: tuple[ButtonSpec, ...], tokens: ActionTokens
) -> InlineKeyboardMarkup | None:
    if not buttons:
        return None
    row_size = 2 if len(buttons) > 3 else 3
    keys = [
        InlineKeyboardButton(text=b.label[:64], callback_data=tokens.data_for(b.action))
        for b in buttons
    ]
    rows = [keys[i : i + row_size] for i in range(0, len(keys), row_size)]
    return InlineKeyboardMarkup(inline_keyboard=rows)


def _patch_html(out: PatchReviewOut, commands: bool) -> str:
    lines = [f"<b>Patch {escape(out.patch_id)}:</b> {escape(out.title)}"]
    lines += [f"<i>{escape(line)}</i>" for line in out.summary]
    if out.diff.strip():
        code = escape(out.diff, quote=False)
        lines.append(f'<pre><code class="language-diff">{code}</code></pre>')
    if out.url:
        lines.append(f'<a href="{escape(out.url)}">Full diff on the web</a>')
    if commands:
        lines.append(escape(f"/accept {out.patch_id} · /reject {out.patch_id}"))
    return "\n".join(lines)


def _patch_keyboard(patch_id: str) -> InlineKeyboardMarkup | None:
    accept, reject = f"a:{patch_id}", f"r:{patch_id}"
    if len(accept.encode()) > CALLBACK_LIMIT:  # then /accept <id> typed (the text says how)
        return None
    return InlineKeyboardMarkup(
        inline_keyboard=[
            [
                InlineKeyboardButton(text="✅ Accept", callback_data=accept),
                InlineKeyboardButton(text="✖ Reject", callback_data=reject),
            ]
        ]
    )
