"""A workspace patch as a chat review prompt (:class:`~nexflow.bus.events.PatchReviewOut`).

The summary says what changes in words a person reads (target, state keys, NXML nodes,
and what the patch hooks found wrong: a flow file that does not load, with its lines);
the unified diff is cut to fit one chat message, and a cut diff says so and links to the
full diff on the web (``<web>/patches#<id>``). Also the "Sync" button a panel snapshot
gets when workspaces are on: the action ``sync:<panel>``, which ``/press`` runs as
``/sync <panel>``.
"""

from __future__ import annotations

from nexflow import i18n
from nexflow.bus.events import ButtonSpec, PanelSnapshotOut, PatchReviewOut
from nexflow.workspace.api import Patch, PatchDiff

MAX_DIFF_CHARS = 2500
MAX_DIFF_LINES = 60
MAX_NAMES = 12
COMMANDS = frozenset({"sync", "patches", "accept", "reject", "history", "restore"})
SYNC_ACTION = "sync:"


def sync_button(panel_id: str, lang: str | None = None) -> ButtonSpec:
    return ButtonSpec(label=i18n.t(lang, "ws_sync_button"), action=f"{SYNC_ACTION}{panel_id}")


def with_sync_button(snap: PanelSnapshotOut, lang: str | None = None) -> PanelSnapshotOut:
    if any(b.action.startswith(SYNC_ACTION) for b in snap.buttons):
        return snap
    return snap.model_copy(update={"buttons": (*snap.buttons, sync_button(snap.panel_id, lang))})


def patch_url(web_url: str, patch_id: str) -> str:
    return f"{web_url.rstrip('/')}/patches#{patch_id}" if web_url else ""


def _names(items: tuple[str, ...]) -> str:
    shown = ", ".join(items[:MAX_NAMES])
    return shown + (f" (+{len(items) - MAX_NAMES})" if len(items) > MAX_NAMES else "")


def summary_lines(diff: PatchDiff, lang: str | None = None) -> tuple[str, ...]:
    p = diff.patch
    lines = [i18n.t(lang, "ws_review_target", target=p.target, source=p.source)]
    if diff.state_keys:
        lines.append(i18n.t(lang, "ws_review_state", keys=_names(diff.state_keys)))
    if diff.nodes_added:
        lines.append(i18n.t(lang, "ws_review_added", nodes=_names(diff.nodes_added)))
    if diff.nodes_removed:
        lines.append(i18n.t(lang, "ws_review_removed", nodes=_names(diff.nodes_removed)))
    lines.extend(i18n.t(lang, "ws_review_problem", problem=x) for x in diff.problems)
    if p.status != "pending":
        lines.append(i18n.t(lang, "ws_review_status", status=p.status, reason=p.reason or "—"))
    return tuple(lines)


def cut_diff(text: str, url: str, lang: str | None = None) -> str:
    """``text`` within :data:`MAX_DIFF_CHARS` / :data:`MAX_DIFF_LINES`, cut at a line."""
    lines = text.rstrip("\n").split("\n") if text.strip() else []
    kept: list[str] = []
    size = 0
    for line in lines:
        if len(kept) >= MAX_DIFF_LINES or size + len(line) + 1 > MAX_DIFF_CHARS:
            break
        kept.append(line)
        size += len(line) + 1
    if len(kept) == len(lines):
        return "\n".join(kept)
    more = len(lines) - len(kept)
    where = url or "GET /api/v1/patches/<id>"
    return "\n".join([*kept, i18n.t(lang, "ws_review_cut", lines=more, url=where)])


def review_out(
    diff: PatchDiff,
    *,
    channel: str,
    chat_id: str,
    session_id: str | None = None,
    web_url: str = "",
    lang: str | None = None,
) -> PatchReviewOut:
    patch = diff.patch
    url = patch_url(web_url, patch.id)
    return PatchReviewOut(
        channel=channel,
        chat_id=chat_id,
        session_id=session_id,
        patch_id=patch.id,
        title=patch.summary or patch.target,
        summary=summary_lines(diff, lang),
        diff=cut_diff(diff.text, url, lang),
        url=url,
    )


def patch_line(patch: Patch) -> str:
    """One line of a patch listing."""
    reason = f" ({patch.reason})" if patch.status == "conflict" and patch.reason else ""
    return f"• {patch.id} [{patch.status}] {patch.target}: {patch.summary}{reason}"
