"""Patch hooks (``PatchHooks``): a check's problems reach the review of a file patch, a
merged hook hears of the accept with main's text, and a hook that raises fails neither
the review nor the accept. Real git."""

from __future__ import annotations

from collections.abc import Sequence

from ws_support import USER, Env

from nexflow.workspace.api import FileChange
from nexflow.workspace.service import WorkspaceService


async def test_patch_hooks_check_and_merged_see_the_file(env: Env, ws: WorkspaceService) -> None:
    seen: list[FileChange] = []
    merged: list[FileChange] = []

    def check(change: FileChange) -> Sequence[str]:
        seen.append(change)
        return [f"{change.path}:1:1: too short"] if len(change.text) < 10 else []

    async def on_merged(change: FileChange) -> None:
        merged.append(change)

    env.hooks.checks.append(check)
    env.hooks.merged.append(on_merged)
    patch = await ws.propose(USER, "file:notes/a.md", "short", "A note", "chat")
    diff = await ws.diff(patch.id)
    assert diff.problems == ("notes/a.md:1:1: too short",)
    assert diff.to_json()["problems"] == ["notes/a.md:1:1: too short"]
    assert seen == [FileChange(USER, True, "notes/a.md", "short")]
    assert merged == []  # proposing is not merging

    await ws.accept(patch.id, USER)
    assert merged == [FileChange(USER, True, "notes/a.md", "short")]

    await ws.create_workspace(USER, "research")
    other = await ws.propose(USER, "file:notes/b.md", "long enough text", "B", "chat", "research")
    assert (await ws.diff(other.id)).problems == ()
    assert seen[-1] == FileChange(USER, False, "notes/b.md", "long enough text")


async def test_patch_hooks_that_raise_fail_neither_review_nor_accept(
    env: Env, ws: WorkspaceService
) -> None:
    def check(change: FileChange) -> Sequence[str]:
        raise RuntimeError("a bug in a check")

    async def on_merged(change: FileChange) -> None:
        raise RuntimeError("a bug in a merged hook")

    env.hooks.checks.append(check)
    env.hooks.merged.append(on_merged)
    patch = await ws.propose(USER, "file:notes/a.md", "some text", "A note", "chat")
    assert (await ws.diff(patch.id)).problems == ()
    accepted = await ws.accept(patch.id, USER)
    assert accepted.status == "merged"
    assert (ws.workspace_path(USER) / "notes/a.md").read_text() == "some text"
