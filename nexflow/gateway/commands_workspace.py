"""Workspace chat commands: ``/sync <panel>``, ``/patches``, ``/accept <id>``,
``/reject <id>``, ``/history <panel>``, ``/restore <panel> <sha>``.

They go through the inbox like every command (nothing waits on a patch review, so unlike
``/confirm`` they need no bypass). ``/sync`` calls the model, so it first posts a
"Syncing…" line, then one :class:`~nexflow.bus.events.PatchReviewOut` per patch it made
(Accept / Reject buttons on every channel). A refused operation
(:class:`~nexflow.workspace.api.WorkspaceError`) answers with its message and hint.
A panel snapshot's "Sync" button is the action ``sync:<panel>``
(:func:`~nexflow.gateway.patch_review.sync_button`).
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

import structlog

from nexflow import i18n
from nexflow.bus.events import Outbound, TextOut
from nexflow.gateway.commands import CommandResult
from nexflow.gateway.patch_review import patch_line, review_out, with_sync_button
from nexflow.workspace.api import Patch, WorkspaceError, Workspaces

if TYPE_CHECKING:
    from nexflow.panels.runtime.service import PanelService

log = structlog.get_logger("nexflow.workspace.chat")

Post = Callable[[Outbound], Awaitable[int]]


@dataclass(frozen=True, slots=True)
class Where:
    """Who asked, and where the answer goes."""

    user_id: str
    channel: str
    chat_id: str
    session_id: str | None
    lang: str


class WorkspaceCommands:
    def __init__(
        self,
        workspaces: Workspaces,
        post: Post,
        web_url: str = "",
        panels: PanelService | None = None,
    ) -> None:
        self._ws = workspaces
        self._post = post  # the outbox: progress lines and all reviews but the last
        self._web_url = web_url
        self._panels = panels

    async def handle(
        self,
        name: str,
        rest: str,
        user_id: str,
        channel: str,
        chat_id: str,
        session_id: str | None,
        lang: str,
    ) -> CommandResult:
        """Run ``/<name> <rest>`` for ``user_id``; the answer goes to ``channel``/``chat_id``."""
        where = Where(user_id, channel, chat_id, session_id, lang)
        args = rest.split()
        try:
            match name, args:
                case "sync", [panel]:
                    return await self._sync(panel, where)
                case "patches", []:
                    return await self._pending(where)
                case "accept" | "reject", [patch_id]:
                    return await self._decide(name, patch_id, where)
                case "history", [panel]:
                    return await self._history(panel, where)
                case "restore", [panel, sha]:
                    return await self._restore(panel, sha, where)
        except WorkspaceError as exc:
            log.info("workspace_command_refused", command=name, code=exc.code, error=exc.message)
            return CommandResult("\n".join(x for x in (exc.message, exc.hint) if x))
        return CommandResult(i18n.t(where.lang, f"ws_usage_{name}"))

    async def _sync(self, panel: str, where: Where) -> CommandResult:
        await self._post(
            TextOut(
                channel=where.channel,
                chat_id=where.chat_id,
                session_id=where.session_id,
                text=i18n.t(where.lang, "ws_syncing", panel=panel),
            )
        )
        started = time.perf_counter()
        patches = await self._ws.sync(where.user_id, panel)
        log.info("workspace_synced", panel=panel, patches=len(patches), ms=_ms(started))
        if not patches:
            return CommandResult(i18n.t(where.lang, "ws_nothing", panel=panel))
        reviews = [
            review_out(
                await self._ws.diff(p.id),
                channel=where.channel,
                chat_id=where.chat_id,
                session_id=where.session_id,
                web_url=self._web_url,
                lang=where.lang,
            )
            for p in patches
        ]
        for review in reviews[:-1]:
            await self._post(review)
        heading = i18n.t(where.lang, "ws_synced", panel=panel, count=len(patches))
        return CommandResult(_listing(heading, patches), outbound=reviews[-1])

    async def _pending(self, where: Where) -> CommandResult:
        patches = await self._ws.patches(where.user_id, "pending")
        if not patches:
            return CommandResult(i18n.t(where.lang, "ws_no_patches"))
        heading = i18n.t(where.lang, "ws_pending", count=len(patches))
        return CommandResult(_listing(heading, patches))

    async def _decide(self, name: str, patch_id: str, where: Where) -> CommandResult:
        if name == "reject":
            patch = await self._ws.reject(patch_id, where.user_id)
            return CommandResult(i18n.t(where.lang, "ws_rejected", id=patch.id))
        patch = await self._ws.accept(patch_id, where.user_id)
        if patch.status != "merged":
            reason = patch.reason or patch.status
            return CommandResult(i18n.t(where.lang, "ws_conflict", id=patch.id, reason=reason))
        text = i18n.t(where.lang, "ws_merged", id=patch.id, commit=patch.merge_commit[:10])
        return await self._with_panel(patch.target.removeprefix("panel:"), text, where)

    async def _history(self, panel: str, where: Where) -> CommandResult:
        commits = await self._ws.history(where.user_id, panel)
        if not commits:
            return CommandResult(i18n.t(where.lang, "ws_history_empty", panel=panel))
        lines = [i18n.t(where.lang, "ws_history", panel=panel)]
        lines += [
            f"{c.sha[:10]} {time.strftime('%Y-%m-%d %H:%M', time.gmtime(c.at))} "
            f"{c.author}: {c.message.splitlines()[0] if c.message else ''}"
            for c in commits[:30]
        ]
        return CommandResult("\n".join(lines))

    async def _restore(self, panel: str, sha: str, where: Where) -> CommandResult:
        commit = await self._ws.restore(where.user_id, panel, sha)
        text = i18n.t(where.lang, "ws_restored", panel=panel, sha=sha[:10], commit=commit.sha[:10])
        return await self._with_panel(panel, text, where)

    async def _with_panel(self, panel_id: str, text: str, where: Where) -> CommandResult:
        """``text``, shown on the panel's fresh snapshot when the panel is open."""
        panels = self._panels
        if panels is None or panel_id not in {r.id for r in panels.instances(where.user_id)}:
            return CommandResult(text)
        snap = await panels.snapshot(
            panel_id, channel=where.channel, chat_id=where.chat_id, notices=(text,)
        )
        return CommandResult(text, outbound=with_sync_button(snap, where.lang))


def _listing(heading: str, patches: list[Patch]) -> str:
    return "\n".join([heading, *(patch_line(p) for p in patches)])


def _ms(started: float) -> float:
    return round((time.perf_counter() - started) * 1000, 1)
