"""A session as the chat page draws it: the ``timeline`` of ``GET /api/v1/sessions/{id}``.

Built at read time from the session's messages and outbox rows, oldest first:

- ``{"kind": "user", "text"}`` (``"pending": true`` for a message not answered yet),
- ``{"kind": "assistant", "text", "outbox_id"?}`` (a turn's reply carries its outbox id),
- ``{"kind": "tool_call", "name", "arguments"}``,
- ``{"kind": "tool_result", "name", "ok", "content"}``,
- ``{"kind": "card", "outbox_id", "outbound": {...}, "delivered", "status"?}`` — a turn's
  reply that is not plain text (it replaces the turn's stored assistant text), and every
  message sent outside a turn (reminders, sync progress, confirmation requests, notices).

Cards show what is true now, not what was sent: a panel card is the panel's current
snapshot (``status``: ``live``, or ``gone`` when the panel was deleted, or ``stale`` when
it could not be rendered), a patch card carries the patch's current status, a
confirmation card the request's (``pending``, ``approved``, ``declined``, ``expired``,
``used``, ``unknown``).

The items' models (the OpenAPI schema's ``TimelineItem`` union, tagged by ``kind``) are in
:mod:`nexflow.web.models_chat`; a key an item lacks is absent, never null.
"""

from __future__ import annotations

import asyncio
import itertools
import time
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

import structlog

from nexflow.bus.events import ConfirmationOut, PanelSnapshotOut, PatchReviewOut
from nexflow.storage.base import SessionRecord
from nexflow.storage.parking import SessionOutboxRow, TimelineStore, TurnMessage

if TYPE_CHECKING:
    from nexflow.web.app import WebServices
    from nexflow.workspace.api import Patch

TASK_CARD = "task:"  # a flow run's card reuses the panel card (nexflow.gateway.commands_flows)

log = structlog.get_logger("nexflow.web")
Item = dict[str, Any]
TOOL_CHARS = 2000  # of a tool result shown on the page
PATCH_LOOKUP_S = 5.0  # the workspace stack may still be loading after a start
OPEN_TURNS = 50


async def session_timeline(svc: WebServices, session: SessionRecord, limit: int) -> list[Item]:
    storage = svc.storage
    if not isinstance(storage, TimelineStore):
        return []
    messages = await storage.turn_messages(session.id, limit)
    # With the history cut at ``limit`` only what was sent since its first turn is shown.
    since = _started(messages[0]) if len(messages) >= limit else 0.0
    rows = await storage.session_outbox(session.id, since, limit)
    open_turns = await storage.open_turns(session.id, OPEN_TURNS)
    cards = _Cards(svc, session, storage)
    await cards.load(rows)
    entries: list[tuple[float, int, Item]] = []
    order = itertools.count()
    replies = {r.inbox_id: r for r in rows if r.inbox_id is not None}
    used: set[int] = set()
    for at, item in _turn_items(messages, replies, used, cards):
        entries.append((at, next(order), item))
    for row in rows:
        if row.id not in used:
            entries.append((row.created_at, next(order), cards.item(row)))
    for turn in open_turns:
        user: Item = {"kind": "user", "text": turn.message, "pending": True, "status": turn.status}
        entries.append((turn.created_at, next(order), user))
    entries.sort(key=lambda e: (e[0], e[1]))
    return [item for _, _, item in entries]


def _started(m: TurnMessage) -> float:
    return m.turn_at if m.turn_at is not None else m.created_at


def _turn_items(
    messages: list[TurnMessage],
    replies: dict[int, SessionOutboxRow],
    used: set[int],
    cards: _Cards,
) -> Iterator[tuple[float, Item]]:
    """Each message as timeline items, at the time it happened: a turn's user message
    when it was accepted, the rest when the turn was answered."""
    last_reply: dict[int, int] = {}  # inbox id -> id of the turn's final assistant message
    for m in messages:
        if m.inbox_id is not None and m.role == "assistant" and not m.tool_calls:
            last_reply[m.inbox_id] = m.id
    for m in messages:
        if m.role == "user":
            yield _started(m), {"kind": "user", "text": m.content}
        elif m.role == "assistant":
            row = replies.get(m.inbox_id) if m.inbox_id is not None else None
            if row is not None and last_reply.get(row.inbox_id or 0) == m.id:
                used.add(row.id)
                out = row.outbound
                if out.kind == "text":
                    yield m.created_at, {"kind": "assistant", "text": out.text, "outbox_id": row.id}
                else:
                    yield m.created_at, cards.item(row)
                continue
            if m.content:
                yield m.created_at, {"kind": "assistant", "text": m.content}
            for call in m.tool_calls or ():
                function = call.get("function") or {}
                yield (
                    m.created_at,
                    {
                        "kind": "tool_call",
                        "name": str(function.get("name", "")),
                        "arguments": str(function.get("arguments", "")),
                    },
                )
        elif m.role == "tool":
            yield (
                m.created_at,
                {
                    "kind": "tool_result",
                    "name": m.name or "",
                    "ok": not m.content.startswith("error:"),
                    "content": m.content[:TOOL_CHARS],
                },
            )


class _Cards:
    """Renders outbox rows as cards with the current state of what they show."""

    def __init__(self, svc: WebServices, session: SessionRecord, storage: TimelineStore) -> None:
        self._svc = svc
        self._session = session
        self._storage = storage
        self._panels: dict[str, tuple[str, PanelSnapshotOut | None]] = {}
        self._patches: dict[str, Patch] = {}
        self._approvals: dict[str, str] = {}

    async def load(self, rows: list[SessionOutboxRow]) -> None:
        outs = [r.outbound for r in rows]
        panel_ids = {
            o.panel_id
            for o in outs
            if isinstance(o, PanelSnapshotOut) and not o.panel_id.startswith(TASK_CARD)
        }
        for panel_id in panel_ids:
            self._panels[panel_id] = await self._panel(panel_id)
        if any(isinstance(o, PatchReviewOut) for o in outs):
            await self._load_patches()
        asks = [o.confirmation_id for o in outs if isinstance(o, ConfirmationOut)]
        if asks:
            self._approvals = await self._storage.approval_status(asks)

    async def _panel(self, panel_id: str) -> tuple[str, PanelSnapshotOut | None]:
        panels = self._svc.panels
        if panels is None:
            return "stale", None
        from nexflow.panels.errors import PanelError
        from nexflow.panels.runtime import PanelNotFound, PanelRuntimeError

        try:
            snap = await panels.snapshot(panel_id, channel="web", chat_id=self._session.chat_id)
        except PanelNotFound:
            return "gone", None
        except (PanelRuntimeError, PanelError):
            log.warning("timeline_panel_unavailable", panel=panel_id, exc_info=True)
            return "stale", None
        return "live", snap

    async def _load_patches(self) -> None:
        workspaces = self._svc.workspaces
        if workspaces is None:
            return
        from nexflow.workspace.api import WorkspaceError

        try:
            async with asyncio.timeout(PATCH_LOOKUP_S):
                found = await workspaces.patches(self._session.user_id)
        except (WorkspaceError, TimeoutError):
            log.warning("timeline_patches_unavailable", exc_info=True)
            return
        self._patches = {p.id: p for p in found}

    def item(self, row: SessionOutboxRow) -> Item:
        out = row.outbound
        item: Item = {
            "kind": "card",
            "outbox_id": row.id,
            "delivered": row.status == "delivered",
        }
        if isinstance(out, PanelSnapshotOut) and out.panel_id.startswith(TASK_CARD):
            item["status"] = "task"  # a task card (commands_flows): its buttons stay
        elif isinstance(out, PanelSnapshotOut):
            status, snap = self._panels.get(out.panel_id, ("stale", None))
            item["status"] = status
            if snap is not None:
                extra = [b for b in out.buttons if not b.action.startswith("panel:")]
                buttons = (*snap.buttons, *(b for b in extra if b not in snap.buttons))
                out = out.model_copy(
                    update={"title": snap.title, "text": snap.text, "buttons": buttons}
                )
            elif status == "gone":
                out = out.model_copy(update={"buttons": ()})
        elif isinstance(out, PatchReviewOut):
            patch = self._patches.get(out.patch_id)
            if patch is not None:
                item["status"] = patch.status
                item["reason"] = patch.reason
                item["merge_commit"] = patch.merge_commit
        elif isinstance(out, ConfirmationOut):
            status = self._approvals.get(out.confirmation_id, "unknown")
            if status == "pending" and out.expires_at <= time.time():
                status = "expired"
            item["status"] = status
        item["outbound"] = out.model_dump(mode="json")
        return item
