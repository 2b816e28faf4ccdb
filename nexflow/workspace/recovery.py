"""Making patch rows and patch branches agree again after a crash.

On start, for every workspace repository:

- a ``pending`` row whose branch is gone becomes ``conflict`` ("its branch ... is gone");
- a ``pending`` row whose branch is already in main's history (the process died between
  moving main and writing the row) becomes ``merged`` and is applied to the panel;
- a branch of a ``merged`` or ``rejected`` row is deleted;
- a branch without a row (the process died between writing the branch and the row) is
  adopted as ``pending`` from its commit trailers, or deleted when it has none;
- every ``merged`` row not yet ``applied`` is applied to its panel (idempotent).
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable, Mapping
from pathlib import Path

import structlog

from nexflow.workspace import patching
from nexflow.workspace.api import Patch, WorkspaceError
from nexflow.workspace.gitrepo import PATCH_PREFIX, CommitMeta, GitRepo
from nexflow.workspace.layout import Target, parse_target
from nexflow.workspace.repos import Repos, in_thread
from nexflow.workspace.store import PatchRow, PatchStore

log = structlog.get_logger("nexflow.workspace")
Apply = Callable[[GitRepo, PatchRow], Awaitable[Patch]]


def drop_branch(repo: GitRepo, patch_id: str) -> None:
    if repo.head(PATCH_PREFIX + patch_id) is not None:
        repo.delete_ref(PATCH_PREFIX + patch_id)


class Recovery:
    def __init__(self, repos: Repos, store: PatchStore, apply: Apply) -> None:
        self._repos = repos
        self._store = store
        self._apply = apply

    async def run(self) -> None:
        """Make rows and branches agree after a crash (docs/workspaces.md).

        The rows are read again under each workspace's lock, and an unapplied row once
        more before it is applied: another replica or worker may have proposed, merged
        or applied a patch there since this process began (docs/scale-out.md)."""
        every = {r.patch.id: r for r in await self._store.select(limit=1_000_000)}
        for _, path in self._repos.existing():
            key = await self._key_of(path, every)
            if key is None:
                continue
            async with self._repos.locked(key):
                rows = {
                    r.patch.id: r for r in await self._store.select(workspace=key, limit=1_000_000)
                }
                repo = await self._repos.repo(key, create=False)
                branches = await in_thread(repo.refs, PATCH_PREFIX)
                for ref, sha in branches.items():
                    await self._reconcile_branch(key, repo, ref, sha, rows)
                for row in list(rows.values()):
                    p = row.patch
                    lost = PATCH_PREFIX + p.id not in branches
                    if p.workspace == key and p.status == "pending" and lost:
                        reason = f"its branch {p.branch} is gone"
                        await self._store.update(p.id, status="conflict", reason=reason)
                        log.warning("patch_branch_lost", patch=p.id)
        for row in await self._store.unapplied():
            key = row.patch.workspace
            async with self._repos.locked(key):
                fresh = await self._store.get(row.patch.id)
                if fresh is None or fresh.applied or fresh.patch.status != "merged":
                    continue  # applied meanwhile, by the process that merged it
                repo = await self._repos.repo(key, create=False)
                await self._apply(repo, fresh)
                log.info("patch_applied_on_start", patch=row.patch.id)

    async def _key_of(self, path: Path, rows: Mapping[str, PatchRow]) -> str | None:
        for row in rows.values():
            if self._repos.path(row.patch.workspace) == path:
                return row.patch.workspace
        repo = await in_thread(GitRepo, path, timeout_s=self._repos.config.git_timeout_s)
        try:
            for sha in (await in_thread(repo.refs, PATCH_PREFIX)).values():
                user = patching.trailers((await in_thread(repo.meta, sha)).message).get("user")
                if user is not None:
                    key = self._repos.key(user, path.name)
                    if self._repos.path(key) == path:
                        return key
        finally:
            repo.close()
        return None

    async def _reconcile_branch(
        self, key: str, repo: GitRepo, ref: str, sha: str, rows: dict[str, PatchRow]
    ) -> None:
        patch_id = ref[len(PATCH_PREFIX) :]
        row = rows.get(patch_id)
        if row is not None and row.patch.status in ("merged", "rejected"):
            await in_thread(drop_branch, repo, patch_id)
            return
        if row is not None and row.patch.status == "pending":
            main = await in_thread(repo.head)
            if main is not None and await in_thread(repo.is_ancestor, sha, main):
                merge = await in_thread(repo.first_merge_of, sha) or main
                meta = await in_thread(repo.meta, sha)
                updated = await self._store.update(
                    patch_id,
                    status="merged",
                    merge_commit=merge,
                    head=sha,
                    base=meta.parents[0],
                    applied=0,
                )
                rows[patch_id] = updated
                await in_thread(drop_branch, repo, patch_id)
                log.warning("patch_merge_recovered", patch=patch_id, merge=merge)
            return
        if row is not None:
            return
        meta = await in_thread(repo.meta, sha)
        tags = patching.trailers(meta.message)
        try:
            target = parse_target(tags.get("target", ""))
        except WorkspaceError:
            target = None
        if target is None or "user" not in tags or not meta.parents:
            await in_thread(repo.delete_ref, ref)
            log.warning("patch_branch_dropped", branch=ref, reason="no usable trailers")
            return
        await self._adopt(key, patch_id, target, tags, meta)

    async def _adopt(
        self, key: str, patch_id: str, target: Target, tags: Mapping[str, str], meta: CommitMeta
    ) -> None:
        now = time.time()
        patch = Patch(
            id=patch_id,
            workspace=key,
            user_id=tags["user"],
            target=str(target),
            status="pending",
            summary=meta.message.splitlines()[0][:200],
            branch=patching.branch_of(patch_id),
            base=meta.parents[0],
            source=tags.get("source", "recovered"),
            reason="",
            created_at=meta.at,
            updated_at=now,
        )
        await self._store.insert(patch, meta.sha)
        log.warning("patch_adopted", patch=patch_id, workspace=key)
