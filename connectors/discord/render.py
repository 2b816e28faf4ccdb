"""Outbound messages as Discord content: 2000-character parts, embeds and buttons.

Buttons carry their meaning in ``custom_id`` (``nxf:confirm:<id>``, ``nxf:cancel:<id>``,
``nxf:accept:<patch id>``, ``nxf:reject:<patch id>``, ``nxf:press:<action>``), so a click
is understood from the interaction alone, also after a restart; the connector turns it back
into a chat command (:func:`parse_custom_id`).
"""

from __future__ import annotations

import io
from dataclasses import dataclass, field

from connectors.discord.sdk import discord
from nexflow.bus.events import ConfirmationOut, PanelSnapshotOut, PatchReviewOut

MESSAGE_LIMIT = 2000
EMBED_TITLE_LIMIT = 256
EMBED_DESCRIPTION_LIMIT = 4096
BUTTON_LABEL_LIMIT = 80
CUSTOM_ID_LIMIT = 100
BUTTONS_LIMIT = 25
PREFIX = "nxf:"
_FENCE = "```"


@dataclass
class Rendered:
    """Keyword arguments for one ``Messageable.send``."""

    content: str | None = None
    embed: discord.Embed | None = None
    view: discord.ui.View | None = None
    files: list[discord.File] = field(default_factory=list)


def split_text(text: str, limit: int = MESSAGE_LIMIT) -> list[str]:
    """Cut ``text`` into parts of at most ``limit`` characters on line boundaries (a
    longer line is cut hard). A code block cut in two is closed and reopened, so every
    part renders on its own."""
    if len(text) <= limit:
        return [text] if text.strip() else []
    parts: list[str] = []
    current = ""
    fence: str | None = None  # the opening line of the code block we are inside

    def flush() -> None:
        nonlocal current
        if fence is not None and current == fence + "\n":
            return  # nothing yet after the reopened fence
        if current.strip():  # a part of only whitespace is dropped
            parts.append(current.rstrip("\n") + ("\n" + _FENCE if fence else ""))
        current = fence + "\n" if fence else ""

    for line in text.splitlines(keepends=True):
        room = limit - (len(_FENCE) + 1 if fence else 0)
        if len(current) + len(line) > room:
            flush()
        rest = line
        while len(current) + len(rest) > room:  # a single line longer than a part
            take = room - len(current)
            current += rest[:take]
            rest = rest[take:]
            flush()
        current += rest
        if line.lstrip().startswith(_FENCE):
            fence = None if fence else line.strip()[:32]
    if fence and current == fence + "\n":
        current = ""
    fence = None
    flush()
    return parts


def _code_block(text: str, lang: str, limit: int) -> str:
    safe = text.replace(_FENCE, "`\u200b``")  # a fence inside would end the block early
    room = limit - len(lang) - 8
    if len(safe) > room:
        safe = safe[: room - 2] + "\n…"
    return f"{_FENCE}{lang}\n{safe}\n{_FENCE}"


def _clip(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _button(
    label: str, custom_id: str, style: discord.ButtonStyle
) -> discord.ui.Button[discord.ui.View]:
    return discord.ui.Button(
        label=_clip(label, BUTTON_LABEL_LIMIT) or "?", custom_id=custom_id, style=style
    )


def _view(buttons: list[discord.ui.Button[discord.ui.View]]) -> discord.ui.View | None:
    if not buttons:
        return None
    view = discord.ui.View(timeout=None)
    for button in buttons[:BUTTONS_LIMIT]:
        view.add_item(button)
    # Clicks are routed by custom_id in the connector's on_interaction; a stopped view is
    # rendered as components but not kept in discord.py's in-memory view store.
    view.stop()
    return view


def panel(out: PanelSnapshotOut) -> Rendered:
    embed = discord.Embed(
        title=_clip(out.title, EMBED_TITLE_LIMIT),
        description=_clip(out.text, EMBED_DESCRIPTION_LIMIT),
    )
    embed.set_footer(text=f"panel {out.panel_id}")
    buttons = [
        _button(b.label, f"{PREFIX}press:{b.action}", discord.ButtonStyle.secondary)
        for b in out.buttons
        if len(f"{PREFIX}press:{b.action}") <= CUSTOM_ID_LIMIT
    ]
    return Rendered(embed=embed, view=_view(buttons))


def confirmation(out: ConfirmationOut) -> Rendered:
    embed = discord.Embed(
        title=_clip(out.title, EMBED_TITLE_LIMIT),
        description=_code_block(out.detail, "", EMBED_DESCRIPTION_LIMIT),
        colour=discord.Colour.orange(),
    )
    embed.add_field(name="Expires", value=f"<t:{int(out.expires_at)}:R>")
    embed.set_footer(text=f"confirmation {out.confirmation_id}")
    cid = out.confirmation_id
    buttons = [
        _button("Confirm", f"{PREFIX}confirm:{cid}", discord.ButtonStyle.success),
        _button("Cancel", f"{PREFIX}cancel:{cid}", discord.ButtonStyle.danger),
    ]
    return Rendered(embed=embed, view=_view(buttons))


def patch_review(out: PatchReviewOut) -> Rendered:
    title = _clip(f"Patch {out.patch_id}: {out.title}", EMBED_TITLE_LIMIT)
    summary = "\n".join(out.summary)
    room = EMBED_DESCRIPTION_LIMIT - len(summary) - 1
    description = "\n".join(x for x in (summary, _code_block(out.diff, "diff", room)) if x)
    files: list[discord.File] = []
    if len(out.diff) + 12 > room:  # the full diff goes along as a file
        blob = io.BytesIO(out.diff.encode())
        files.append(discord.File(blob, filename=f"patch-{out.patch_id}.diff"))
    embed = discord.Embed(title=title, description=description, colour=discord.Colour.blue())
    if out.url:
        embed.add_field(name="Full diff", value=_clip(out.url, 1024))
    embed.set_footer(text=f"patch {out.patch_id}")
    pid = out.patch_id
    buttons = [
        _button("Accept", f"{PREFIX}accept:{pid}", discord.ButtonStyle.success),
        _button("Reject", f"{PREFIX}reject:{pid}", discord.ButtonStyle.danger),
    ]
    fits = all(len(b.custom_id or "") <= CUSTOM_ID_LIMIT for b in buttons)
    return Rendered(embed=embed, view=_view(buttons) if fits else None, files=files)


def parse_custom_id(custom_id: str) -> str | None:
    """The chat command a button stands for, or None for buttons that are not ours."""
    if not custom_id.startswith(PREFIX):
        return None
    verb, _, arg = custom_id[len(PREFIX) :].partition(":")
    if verb in ("confirm", "cancel", "accept", "reject", "press") and arg:
        return f"/{verb} {arg}"
    return None
