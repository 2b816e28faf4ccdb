"""The git side of a patch: its files, its shadow branch, the rebase and the merge.

Blocking functions over a :class:`GitRepo`, run in a thread under the workspace lock.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from nexflow.panels.runtime.errors import PanelInvalid, StateRejected
from nexflow.panels.runtime.state import check_state, initial_state, load_panel
from nexflow.workspace.api import QuotaExceeded, WorkspaceError
from nexflow.workspace.gitrepo import MAIN, PATCH_PREFIX, ZERO, GitRepo
from nexflow.workspace.layout import (
    Target,
    dump_state,
    load_state,
    panel_files,
    panel_of,
    parse_panel_content,
)
from nexflow.workspace.merge import rebase_files

AI_AUTHOR = "nexflow-ai"
_TRAILER = re.compile(r"^Nexflow-([A-Za-z]+):\s*(.*)$", re.MULTILINE)


def branch_of(patch_id: str) -> str:
    return f"nexflow/patch/{patch_id}"


def patch_message(patch_id: str, summary: str, target: str, source: str, user_id: str) -> str:
    return (
        f"{summary}\n\nNexflow-Patch: {patch_id}\nNexflow-Target: {target}\n"
        f"Nexflow-Source: {source}\nNexflow-User: {user_id}\n"
    )


def trailers(message: str) -> dict[str, str]:
    return {m.group(1).lower(): m.group(2).strip() for m in _TRAILER.finditer(message)}


def prepare_files(repo: GitRepo, head: str, target: Target, content: str) -> dict[str, str]:
    """The files a patch writes, checked; :class:`WorkspaceError` if it is refused."""
    if target.kind == "file":
        if repo.read(head, target.name) == content:
            raise WorkspaceError(f"the patch for {target} changes nothing")
        return {target.name: content}
    nxml_path, state_path = panel_files(target.name)
    base_nxml = repo.read(head, nxml_path)
    if base_nxml is None:
        raise WorkspaceError(f"panel {target.name!r} is not in the workspace")
    base_state = load_state(repo.read(head, state_path))
    change = parse_panel_content(content)
    try:
        definition = load_panel(change.nxml if change.nxml is not None else base_nxml)
    except PanelInvalid as exc:
        raise WorkspaceError(f"the patch for {target} was refused: {exc.message}") from exc
    declared = initial_state(definition)
    unknown = [k for k in (*change.state, *change.append) if k not in declared]
    if unknown:
        names = ", ".join(declared) or "none"
        raise WorkspaceError(
            f"the patch for {target} was refused: {', '.join(unknown)} is not declared in "
            f"its <Data> (declared: {names})"
        )
    state: dict[str, Any] = {k: base_state.get(k, v) for k, v in declared.items()}
    state.update(change.state)
    for key, items in change.append.items():
        current = state.get(key)
        if not isinstance(current, list):
            raise WorkspaceError(
                f"the patch for {target} was refused: append needs a list, "
                f"$state.{key} is a {type(current).__name__}"
            )
        state[key] = [*current, *items]
    try:
        check_state(definition, state)
    except StateRejected as exc:
        raise WorkspaceError(f"the patch for {target} was refused: {exc.message}") from exc
    files: dict[str, str] = {}
    if state != base_state:
        files[state_path] = dump_state(state)
    if change.nxml is not None and change.nxml != base_nxml:
        files[nxml_path] = change.nxml
    if not files:
        raise WorkspaceError(f"the patch for {target} changes nothing")
    return files


def check_size(repo: GitRepo, head: str | None, files: dict[str, str | None], limit: int) -> int:
    """The bytes main would hold with ``files`` written; :class:`QuotaExceeded` past
    ``limit``."""
    total = 0
    if head is not None:
        total = repo.total_bytes(head) - sum(repo.sizes(head, list(files)).values())
    total += sum(len(t.encode("utf-8")) for t in files.values() if t)
    if total > limit:
        raise QuotaExceeded(
            f"the workspace would hold {total} bytes, more than its quota of {limit}",
            "delete files or raise workspaces.max_bytes",
        )
    return total


def commit_main(
    repo: GitRepo,
    files: dict[str, str | None],
    message: str,
    author: str,
    max_bytes: int,
    *,
    allow_empty: bool = False,
) -> str | None:
    """Commit ``files`` on main (compare-and-swap) and refresh the work tree; None when
    nothing changed."""
    head = repo.head()
    tree = repo.tree_with(head, files)
    if head is not None and not allow_empty and tree == repo.tree_of(head):
        return None
    total = check_size(repo, head, files, max_bytes)
    sha = repo.commit(head, files, message, author, tree=tree)
    repo.update_ref(MAIN, sha, head or ZERO)
    repo.remember_bytes(sha, total)
    repo.refresh_worktree()
    return sha


def make_branch(repo: GitRepo, patch_id: str, files: dict[str, str], message: str) -> str:
    """The patch commit on ``nexflow/patch/<id>`` from main's head; main is not touched."""
    head = repo.head()
    sha = repo.commit(head, dict(files), message, AI_AUTHOR)
    repo.update_ref(PATCH_PREFIX + patch_id, sha, ZERO)
    return sha


@dataclass(frozen=True, slots=True)
class MergeResult:
    conflict: str = ""  # why it does not apply; "" when merged
    merge_commit: str = ""
    base: str = ""
    head: str = ""


def merge_patch(repo: GitRepo, patch_id: str, message: str, author: str) -> MergeResult:
    """Rebase the patch onto main if main moved, then merge it with a merge commit.

    A conflict changes nothing; a failure before the final ``update-ref`` of main leaves
    main where it was (the branch may have moved to its rebased commit).
    """
    ref = PATCH_PREFIX + patch_id
    head = repo.head(ref)
    if head is None:
        return MergeResult(conflict=f"its branch {branch_of(patch_id)} is gone")
    main = repo.head()
    assert main is not None
    base = repo.meta(head).parents[0]
    if repo.is_ancestor(head, main):  # merged before a crash: find that merge
        merged = repo.first_merge_of(head) or main
        return MergeResult(merge_commit=merged, base=base, head=head)
    if base != main:
        changed = repo.changed(base, head)
        rebased = rebase_files(
            {p: repo.read(base, p) for p in changed},
            {p: repo.read(main, p) for p in changed},
            {p: repo.read(head, p) for p in changed},
            repo.merge_text,
        )
        if rebased.collisions:
            return MergeResult(conflict="; ".join(rebased.collisions))
        problem = _check_panels(repo, main, rebased.files)
        if problem:
            return MergeResult(conflict=problem)
        new_head = repo.commit(main, rebased.files, repo.meta(head).message + "\n", AI_AUTHOR)
        repo.update_ref(ref, new_head, head)
        base, head = main, new_head
    merge = repo.commit(main, {}, message, author, extra_parents=[head], tree=repo.tree_of(head))
    repo.update_ref(MAIN, merge, main)
    repo.refresh_worktree()
    return MergeResult(merge_commit=merge, base=base, head=head)


def _check_panels(repo: GitRepo, main: str, files: dict[str, str | None]) -> str:
    """A rebased panel must still be a valid panel with a state its <Data> accepts."""
    for panel_id in {p for path in files if (p := panel_of(path))}:
        nxml_path, state_path = panel_files(panel_id)
        nxml = files[nxml_path] if nxml_path in files else repo.read(main, nxml_path)
        state = files[state_path] if state_path in files else repo.read(main, state_path)
        if nxml is None or state is None:
            return f"panel {panel_id} was deleted on main"
        try:
            check_state(load_panel(nxml), load_state(state))
        except (PanelInvalid, StateRejected) as exc:
            return f"panel {panel_id} would not be valid after the rebase: {exc.message}"
    return ""


@dataclass(frozen=True, slots=True)
class PanelDelta:
    """What a merge changed in one panel: state keys to set and maybe a new NXML."""

    state: dict[str, Any]
    nxml: str | None


def panel_delta(repo: GitRepo, before: str, after: str, panel_id: str) -> PanelDelta:
    nxml_path, state_path = panel_files(panel_id)
    old, new = load_state(repo.read(before, state_path)), load_state(repo.read(after, state_path))
    keys = {k: v for k, v in new.items() if old.get(k, ZERO) != v}
    old_nxml, new_nxml = repo.read(before, nxml_path), repo.read(after, nxml_path)
    return PanelDelta(keys, new_nxml if new_nxml != old_nxml else None)
