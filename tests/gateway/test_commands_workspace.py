"""The workspace chat commands against an in-memory stand-in for the workspace layer (the
real one is driven end to end in tests/e2e/test_workspace_*.py)."""

from __future__ import annotations

import time
from dataclasses import replace

import pytest

from nexflow.bus.events import Outbound, PanelSnapshotOut, PatchReviewOut, TextOut
from nexflow.gateway.commands import CommandResult
from nexflow.gateway.commands_workspace import WorkspaceCommands
from nexflow.gateway.patch_review import MAX_DIFF_LINES, cut_diff, review_out, with_sync_button
from nexflow.workspace.api import (
    CommitInfo,
    Forbidden,
    NotFound,
    NotPending,
    Patch,
    PatchDiff,
    PatchStatus,
)


def make_patch(pid: str, target: str = "panel:notes", user: str = "u1") -> Patch:
    now = time.time()
    return Patch(
        id=pid,
        workspace=f"{user}/main",
        user_id=user,
        target=target,
        status="pending",
        summary=f"update {target}",
        branch=f"nexflow/patch/{pid}",
        base="b" * 40,
        source="sync:todo",
        reason="",
        created_at=now,
        updated_at=now,
    )


class MemoryWorkspaces:
    def __init__(self) -> None:
        self.items: dict[str, Patch] = {}
        self.next_sync: list[Patch] = []
        self.diff_text = "--- a/panels/notes/state.json\n+++ b/panels/notes/state.json\n-a\n+b"

    async def sync(self, user_id: str, panel_id: str) -> list[Patch]:
        if panel_id == "nope":
            raise NotFound("there is no panel 'nope'", "/panels lists them")
        made, self.next_sync = self.next_sync, []
        self.items.update({p.id: p for p in made})
        return made

    async def propose(
        self, user_id: str, target: str, content: str, summary: str, source: str
    ) -> Patch:
        raise NotImplementedError

    async def patches(
        self, user_id: str | None = None, status: PatchStatus | None = None
    ) -> list[Patch]:
        return [
            p
            for p in self.items.values()
            if (user_id is None or p.user_id == user_id) and (status is None or p.status == status)
        ]

    async def diff(self, patch_id: str) -> PatchDiff:
        return PatchDiff(self._get(patch_id), ("text",), ("Text#hello",), (), self.diff_text)

    def _get(self, patch_id: str) -> Patch:
        if patch_id not in self.items:
            raise NotFound(f"there is no patch {patch_id!r}")
        return self.items[patch_id]

    async def _decide(self, patch_id: str, user_id: str, status: PatchStatus) -> Patch:
        patch = self._get(patch_id)
        if patch.user_id != user_id:
            raise Forbidden("that patch is someone else's")
        if patch.status != "pending":
            raise NotPending(f"patch {patch_id} is already {patch.status}", "see /patches")
        merge = "m" * 40 if status == "merged" else ""
        self.items[patch_id] = replace(patch, status=status, merge_commit=merge)
        return self.items[patch_id]

    async def accept(self, patch_id: str, user_id: str) -> Patch:
        return await self._decide(patch_id, user_id, "merged")

    async def reject(self, patch_id: str, user_id: str) -> Patch:
        return await self._decide(patch_id, user_id, "rejected")

    async def history(self, user_id: str, panel_id: str, limit: int = 50) -> list[CommitInfo]:
        return [CommitInfo("c" * 40, "todo: add milk\n\nby u1", "u1", 0.0)]

    async def restore(self, user_id: str, panel_id: str, sha: str) -> CommitInfo:
        return CommitInfo("d" * 40, f"restore {panel_id} to {sha}", user_id, 0.0)


@pytest.fixture
def setup() -> tuple[MemoryWorkspaces, WorkspaceCommands, list[Outbound]]:
    store = MemoryWorkspaces()
    posted: list[Outbound] = []

    async def post(out: Outbound) -> int:
        posted.append(out)
        return len(posted)

    return store, WorkspaceCommands(store, post, web_url="http://nx.example/"), posted


async def run(
    commands: WorkspaceCommands, text: str, user: str = "u1", lang: str = "en"
) -> CommandResult:
    name, _, rest = text[1:].partition(" ")
    return await commands.handle(name, rest, user, "telegram", "42", "s1", lang)


async def test_sync_posts_progress_then_one_review_per_patch(
    setup: tuple[MemoryWorkspaces, WorkspaceCommands, list[Outbound]],
) -> None:
    store, commands, posted = setup
    store.next_sync = [make_patch("p1"), make_patch("p2", "panel:dashboard")]
    result = await run(commands, "/sync todo")
    assert isinstance(posted[0], TextOut) and posted[0].text.startswith("Syncing todo")
    assert [type(x) for x in posted[1:]] == [PatchReviewOut]  # the last is the reply itself
    last = result.outbound
    assert isinstance(last, PatchReviewOut) and last.patch_id == "p2"
    assert last.url == "http://nx.example/patches#p2" and last.session_id == "s1"
    assert "state keys changed: text" in last.summary and "p1" in result.reply


async def test_sync_with_nothing_to_change_and_errors_without_traceback(
    setup: tuple[MemoryWorkspaces, WorkspaceCommands, list[Outbound]],
) -> None:
    _, commands, _ = setup
    assert "nothing to change" in (await run(commands, "/sync todo")).reply
    refused = await run(commands, "/sync nope")
    assert refused.reply == "there is no panel 'nope'\n/panels lists them"
    assert (await run(commands, "/sync")).reply.startswith("Usage: /sync")
    assert "Синхронизация" in (await run(commands, "/sync todo", lang="ru")).reply


async def test_accept_reject_and_their_refusals(
    setup: tuple[MemoryWorkspaces, WorkspaceCommands, list[Outbound]],
) -> None:
    store, commands, _ = setup
    store.items = {p.id: p for p in (make_patch("p1"), make_patch("p2"), make_patch("p3"))}
    assert "Patches waiting for review: 3" in (await run(commands, "/patches")).reply
    assert (await run(commands, "/accept p1")).reply.startswith("Patch p1 accepted")
    assert "already merged" in (await run(commands, "/accept p1")).reply
    assert "someone else's" in (await run(commands, "/reject p2", user="u2")).reply
    assert "rejected" in (await run(commands, "/reject p2")).reply
    assert "no patch 'zz'" in (await run(commands, "/accept zz")).reply
    assert store.items["p3"].status == "pending"


async def test_history_and_restore(
    setup: tuple[MemoryWorkspaces, WorkspaceCommands, list[Outbound]],
) -> None:
    _, commands, _ = setup
    history = (await run(commands, "/history todo")).reply
    assert "cccccccccc 1970-01-01 00:00 u1: todo: add milk" in history
    assert "by u1" not in history  # only the first line of the message
    restored = await run(commands, "/restore todo cccccccccc")
    assert restored.reply == "todo is back at cccccccccc (new commit dddddddddd)."
    assert (await run(commands, "/restore todo")).reply.startswith("Usage: /restore")


def test_long_diff_is_cut_and_says_where_the_rest_is() -> None:
    text = "\n".join(f"+line {i}" for i in range(200))
    cut = cut_diff(text, "http://x/patches#p1")
    assert len(cut.splitlines()) == MAX_DIFF_LINES + 1
    assert cut.endswith(
        f"… {200 - MAX_DIFF_LINES} more lines not shown; the full diff: http://x/patches#p1"
    )
    assert cut_diff("+one\n", "") == "+one"


def test_review_and_sync_button() -> None:
    diff = PatchDiff(make_patch("p9"), (), ("Button#go",), ("Text#old",), "")
    out = review_out(diff, channel="web", chat_id="c", lang="ru")
    assert out.url == "" and out.diff == ""
    assert out.summary == (
        "цель: panel:notes (источник: sync:todo)",
        "добавлены узлы NXML: Button#go",
        "удалены узлы NXML: Text#old",
    )
    snap = PanelSnapshotOut(channel="web", chat_id="c", panel_id="todo", title="Todo", text="")
    synced = with_sync_button(snap)
    assert [b.action for b in synced.buttons] == ["sync:todo"]
    assert with_sync_button(synced) == synced
