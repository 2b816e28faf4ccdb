"""Patch review: propose, list, diff, accept (rebase, merge, apply) and reject.

:class:`PatchReview` holds the patch operations of
:class:`~nexflow.workspace.service.WorkspaceService` (which waits for start-up, then
calls them) and :meth:`PatchReview.apply`, which recovery also uses to finish an
interrupted accept. A ``panel:<id>`` patch lives in the workspace the panel belongs to,
a ``file:<path>`` patch in the workspace the caller names (the default one when None).
Each operation runs under the workspace lock and commits the mirror's pending work
first, so a patch is made and merged against what the panel shows. Rules, statuses and
crash guarantees: ``docs/workspaces.md#patches``. :class:`~nexflow.workspace.api.PatchHooks`
check a file patch's new text when its diff is read and hear of its accept (the flows'
``flows/*.yaml``: ``docs/flows.md``).
"""

from __future__ import annotations

import hashlib
import secrets
import time
from collections.abc import Sequence

import structlog

from nexflow.panels.runtime import PanelService
from nexflow.panels.runtime.errors import PanelNotFound, PanelRuntimeError
from nexflow.panels.runtime.versions import PanelRecord
from nexflow.workspace import patching
from nexflow.workspace.api import (
    FileChange,
    Forbidden,
    NotFound,
    NotPending,
    Patch,
    PatchDiff,
    PatchHooks,
    PatchStatus,
    QuotaExceeded,
    WorkspaceError,
)
from nexflow.workspace.diff import nodes_changed, state_keys
from nexflow.workspace.files import WorkspaceFiles
from nexflow.workspace.gitrepo import GitRepo
from nexflow.workspace.layout import author_name, panel_files, parse_target
from nexflow.workspace.mirror import PanelMirror
from nexflow.workspace.recovery import drop_branch
from nexflow.workspace.repos import Repos, in_thread
from nexflow.workspace.store import PatchRow, PatchStore

log = structlog.get_logger("nexflow.workspace")


def owned_panel(panels: PanelService, user_id: str, panel_id: str) -> PanelRecord:
    try:
        record = panels.get(panel_id)
    except PanelNotFound as exc:
        raise NotFound(exc.message) from exc
    if record.owner != user_id:
        raise Forbidden(f"panel {panel_id!r} belongs to someone else")
    return record


def has_panel(panels: PanelService, panel_id: str) -> bool:
    return any(r.id == panel_id for r in panels.instances())


class PatchReview:
    def __init__(
        self,
        repos: Repos,
        panels: PanelService,
        store: PatchStore,
        mirror: PanelMirror,
        files: WorkspaceFiles,
        hooks: PatchHooks | None = None,
    ) -> None:
        self._repos = repos
        self._hooks = hooks or PatchHooks()
        self._config = repos.config
        self._panels = panels
        self._store = store
        self._mirror = mirror
        self._files = files

    async def propose(
        self,
        user_id: str,
        target: str,
        content: str,
        summary: str,
        source: str,
        workspace: str | None = None,
        *,
        idempotency_key: str | None = None,
    ) -> Patch:
        """A pending patch on ``nexflow/patch/<id>``; main and the panel are not touched.
        A panel target must belong to ``workspace`` when one is given. ``idempotency_key``
        (a flow step's) names the patch: proposing again with it returns it."""
        parsed = parse_target(target)
        self._files.check_bytes(content)
        record = owned_panel(self._panels, user_id, parsed.name) if parsed.kind == "panel" else None
        summary = " ".join(summary.split())[:200] or f"Change {parsed}"
        patch_id = _patch_id(user_id, idempotency_key) if idempotency_key else secrets.token_hex(5)
        if idempotency_key and (done := await self._store.get(patch_id)) is not None:
            return done.patch  # proposed before a crash: the same patch, once
        key = self.target_key(user_id, record, workspace)
        async with self._repos.locked(key):
            # A file patch may start the default workspace, never a named one.
            create = record is not None or self._repos.key(user_id) == key
            repo = await self._repos.repo(key, create=create)
            pending = await self._store.count(key, "pending")
            if pending >= self._config.max_pending_patches:
                raise QuotaExceeded(
                    f"{key} already has {pending} pending patches "
                    f"(workspaces.max_pending_patches = {self._config.max_pending_patches})",
                    "accept or reject some first",
                )
            await self._mirror.flush_locked(key, repo)  # the base holds every press
            if record is not None:
                await self._mirror.catch_up_locked(key, repo, [self._panels.get(record.id)])
            head = await in_thread(repo.head)
            assert head is not None
            files = await in_thread(patching.prepare_files, repo, head, parsed, content)
            await in_thread(patching.check_size, repo, head, dict(files), self._config.max_bytes)
            message = patching.patch_message(patch_id, summary, str(parsed), source, user_id)
            # The branch first, then the row: a crash in between leaves a branch that
            # start() adopts from its commit trailers.
            sha = await in_thread(patching.make_branch, repo, patch_id, files, message)
            now = time.time()
            patch = Patch(
                id=patch_id,
                workspace=key,
                user_id=user_id,
                target=str(parsed),
                status="pending",
                summary=summary,
                branch=patching.branch_of(patch_id),
                base=head,
                source=source,
                reason="",
                created_at=now,
                updated_at=now,
            )
            await self._store.insert(patch, sha)
        log.info("patch_proposed", patch=patch_id, target=str(parsed), source=source)
        self._notice("proposed", patch)
        return patch

    def target_key(self, user_id: str, record: PanelRecord | None, workspace: str | None) -> str:
        """The workspace a patch target lives in: a panel's own (which must be
        ``workspace`` when one is given), else ``workspace`` of ``user_id``."""
        if record is None:
            return self._repos.key(user_id, workspace)
        key = self._repos.key_of(record)
        if workspace is not None and key != self._repos.key(user_id, workspace):
            raise WorkspaceError(
                f"panel {record.id!r} is in workspace {record.workspace!r}, not {workspace!r}",
                f"a patch from workspace {workspace!r} can only change its own panels and files",
            )
        return key

    async def patches(
        self, user_id: str | None = None, status: PatchStatus | None = None
    ) -> list[Patch]:
        return [row.patch for row in await self._store.select(user_id, status)]

    async def row(self, patch_id: str) -> PatchRow:
        row = await self._store.get(patch_id)
        if row is None:
            raise NotFound(f"there is no patch {patch_id!r}")
        return row

    async def diff(self, patch_id: str) -> PatchDiff:
        row = await self.row(patch_id)
        p = row.patch
        target = parse_target(p.target)
        async with self._repos.locked(p.workspace):
            repo = await self._repos.repo(p.workspace, create=False)
            text = await in_thread(_safe_diff, repo, p.base, row.head)
            keys: tuple[str, ...] = ()
            added: tuple[str, ...] = ()
            removed: tuple[str, ...] = ()
            problems: tuple[str, ...] = ()
            if target.kind == "file" and self._hooks.checks:
                new = await in_thread(_safe_read, repo, row.head, target.name)
                if new is not None:
                    problems = await in_thread(self._check, self._change(p, target.name, new))
            if target.kind == "panel":
                nxml_path, state_path = panel_files(target.name)
                reads = await in_thread(
                    _read_pairs, repo, p.base, row.head, (nxml_path, state_path)
                )
                keys = state_keys(*reads[state_path])
                added, removed = nodes_changed(*reads[nxml_path])
        return PatchDiff(p, keys, added, removed, text, problems)

    def _change(self, p: Patch, path: str, text: str) -> FileChange:
        return FileChange(p.user_id, p.workspace == self._repos.key(p.user_id), path, text)

    def _check(self, change: FileChange) -> tuple[str, ...]:
        found: list[str] = []
        for check in self._hooks.checks:
            try:
                found.extend(check(change))
            except Exception:  # a hook's bug must not hide the patch from its reviewer
                log.exception("patch_check_failed", path=change.path)
        return tuple(found)

    async def _merged_file(self, p: Patch, repo: GitRepo) -> FileChange | None:
        """The file a merged file patch put on main (read under the lock), or None."""
        target = parse_target(p.target)
        if target.kind != "file" or not self._hooks.merged:
            return None
        text = await in_thread(repo.read, p.merge_commit, target.name)
        return self._change(p, target.name, text or "")

    async def _merged(self, change: FileChange | None) -> None:
        if change is None:
            return
        for hook in self._hooks.merged:
            try:
                await hook(change)
            except Exception:  # the accept stands; the hook's owner catches up later
                log.exception("patch_merged_hook_failed", path=change.path)

    async def accept(self, patch_id: str, user_id: str) -> Patch:
        """Merge into main (rebasing first if main moved), then update the live panel."""
        row = await self.row(patch_id)
        _decidable(row, user_id, "accept")
        key = row.patch.workspace
        async with self._repos.locked(key):
            row = await self.row(patch_id)  # decided while we waited?
            _decidable(row, user_id, "accept")
            repo = await self._repos.repo(key, create=False)
            target = parse_target(row.patch.target)
            await self._mirror.flush_locked(key, repo)
            if target.kind == "panel" and has_panel(self._panels, target.name):
                await self._mirror.catch_up_locked(key, repo, [self._panels.get(target.name)])
            message = f"Accept patch {patch_id}: {row.patch.summary}"
            result = await in_thread(
                patching.merge_patch, repo, patch_id, message, author_name(user_id)
            )
            if result.conflict:
                updated = await self._store.update(
                    patch_id, status="conflict", reason=result.conflict
                )
                log.info("patch_conflict", patch=patch_id, reason=result.conflict)
                self._notice("conflict", updated.patch)
                return updated.patch
            await self._store.update(
                patch_id,
                status="merged",
                merge_commit=result.merge_commit,
                base=result.base,
                head=result.head,
                applied=0,
            )
            await in_thread(drop_branch, repo, patch_id)
            final = await self.apply(repo, await self.row(patch_id))
            merged_file = await self._merged_file(final, repo)
        log.info("patch_merged", patch=patch_id, merge=result.merge_commit)
        await self._merged(merged_file)
        self._notice("merged", final)
        return final

    async def apply(self, repo: GitRepo, row: PatchRow) -> Patch:
        """Bring a merged patch to the live panel and the NOG; idempotent."""
        p = row.patch
        target = parse_target(p.target)
        meta = await in_thread(repo.meta, p.merge_commit)
        before = meta.parents[0] if meta.parents else p.base
        graph = self._repos.loaded_nog(p.workspace)
        if target.kind == "panel":
            delta = await in_thread(patching.panel_delta, repo, before, p.merge_commit, target.name)
            try:
                record = await self._panels.apply_change(
                    target.name,
                    state=delta.state,
                    nxml=delta.nxml,
                    kind="patch",
                    user_id=p.user_id,
                    args={"patch": p.id},
                )
                if graph is not None:
                    self._mirror.refresh_graph(graph, record)
            except PanelRuntimeError as exc:  # deleted meanwhile, or no longer valid
                log.error("patch_not_applied", patch=p.id, error=exc.message, exc_info=True)
        elif graph is not None:
            text = await in_thread(repo.read, p.merge_commit, target.name)
            if text is None:
                graph.remove(target.name)
            else:
                graph.update_file(target.name, text)
        return (await self._store.update(p.id, applied=1)).patch

    async def reject(self, patch_id: str, user_id: str) -> Patch:
        row = await self.row(patch_id)
        _decidable(row, user_id, "reject")
        key = row.patch.workspace
        async with self._repos.locked(key):
            row = await self.row(patch_id)
            _decidable(row, user_id, "reject")
            repo = await self._repos.repo(key, create=False)
            await self._mirror.flush_locked(key, repo)
            await in_thread(drop_branch, repo, patch_id)
            updated = await self._store.update(patch_id, status="rejected")
        log.info("patch_rejected", patch=patch_id)
        self._notice("rejected", updated.patch)
        return updated.patch

    def _notice(self, event: str, patch: Patch) -> None:
        for notice in self._hooks.notices:
            try:
                notice(event, patch)
            except Exception:  # a listener's bug must not fail the proposal or decision
                log.exception("patch_notice_failed", patch=patch.id, event=event)


def _decidable(row: PatchRow, user_id: str, verb: str) -> None:
    p = row.patch
    if p.user_id != user_id:
        raise Forbidden(f"only {p.user_id} may {verb} patch {p.id}")
    if p.status == "conflict" and verb == "reject":
        return
    if p.status == "conflict":
        raise NotPending(
            f"patch {p.id} is in conflict ({p.reason}); it can only be rejected",
            "reject it and sync again",
        )
    if p.status != "pending":
        raise NotPending(f"patch {p.id} is already {p.status}")


def _safe_read(repo: GitRepo, head: str, path: str) -> str | None:
    return repo.read(head, path) if repo.head(head) is not None else None


def _safe_diff(repo: GitRepo, base: str, head: str) -> str:
    if repo.head(base) is None or repo.head(head) is None:
        return ""  # a rejected patch's commit may have been garbage-collected
    return repo.diff_text(base, head)


def _read_pairs(
    repo: GitRepo, base: str, head: str, paths: Sequence[str]
) -> dict[str, tuple[str | None, str | None]]:
    ok = repo.head(base) is not None and repo.head(head) is not None
    return {p: (repo.read(base, p), repo.read(head, p)) if ok else (None, None) for p in paths}


def _patch_id(user_id: str, key: str) -> str:
    """A patch id derived from the proposer and an idempotency key (10 hex, as random ids)."""
    return hashlib.sha256(f"{user_id}\0{key}".encode()).hexdigest()[:10]
