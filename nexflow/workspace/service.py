"""``WorkspaceService``: the workspace layer's one entry point.

It implements :class:`~nexflow.workspace.api.Workspaces` and adds the NOG, explicit sync,
file edits, sharing and named workspaces. The work lives in one module per concept:

- ``startup.py``: :class:`Startup`, recovery and the catch-up in the background;
- ``review.py``: :class:`PatchReview`, propose / diff / accept / reject;
- ``history.py``: :class:`PanelHistory`, history and restore;
- ``files.py``: :class:`WorkspaceFiles` (``.files``), file edits and sharing;
- ``browse.py``: :class:`FileBrowser` (``.browser``), GraphStudio's tree, file history
  and restore (callers await :meth:`ready` first);
- ``mirror.py``: :class:`PanelMirror` (``.mirror``), user changes committed on main by
  a background worker this service owns.

``start()`` returns at once: it attaches the mirror to the panel service (no change is
missed) and launches the start-up task; every public operation awaits it first
(:meth:`WorkspaceService.ready`). ``stop()`` cancels a start-up still running, stops
observing, flushes the mirror and closes the repositories (and the cross-process lock's
idle connections). Lifecycle, rules and guarantees: ``docs/workspaces.md``.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import structlog

from nexflow.panels.runtime import PanelService
from nexflow.storage.base import AuditRecord
from nexflow.workspace import patching
from nexflow.workspace.api import (
    CommitInfo,
    Patch,
    PatchDiff,
    PatchHooks,
    PatchStatus,
    SyncFailed,
    SyncUnusable,
    WorkspaceError,
)
from nexflow.workspace.browse import FileBrowser
from nexflow.workspace.files import WorkspaceFiles
from nexflow.workspace.history import PanelHistory
from nexflow.workspace.layout import parse_target
from nexflow.workspace.mirror import PanelMirror, clip
from nexflow.workspace.nog import NexusObjectGraph
from nexflow.workspace.recovery import Recovery
from nexflow.workspace.repos import Repos, in_thread
from nexflow.workspace.review import PatchReview, owned_panel
from nexflow.workspace.startup import Startup
from nexflow.workspace.store import PatchStore
from nexflow.workspace.sync import AuditSink, SyncModel, build_prompt
from nexflow.workspace.sync_reply import SyncAnswer

log = structlog.get_logger("nexflow.workspace")


class WorkspaceService:
    def __init__(
        self,
        repos: Repos,
        panels: PanelService,
        store: PatchStore,
        sync_model: SyncModel | None,
        audit: AuditSink,
        hooks: PatchHooks | None = None,
    ) -> None:
        self._repos = repos
        self._panels = panels
        self._sync = sync_model
        self._audit = audit
        self.mirror = PanelMirror(repos, panels)
        self.files = WorkspaceFiles(repos, store)
        self.browser = FileBrowser(repos, self.files, self.mirror)  # GraphStudio's files
        self._review = PatchReview(repos, panels, store, self.mirror, self.files, hooks)
        self._history = PanelHistory(repos, panels, self.mirror)
        recovery = Recovery(repos, store, self._review.apply)
        self._startup = Startup(repos, panels, self.mirror, recovery)

    @property
    def root(self) -> Path:
        return self._repos.root

    # -- lifecycle ------------------------------------------------------------------

    async def start(self) -> None:
        """Observe the panel service, then reconcile patches with their branches, finish
        interrupted accepts and catch main up with the panel store in the background;
        the mirror's worker starts after that. Returns at once (see :meth:`ready`)."""
        self._repos.root.mkdir(parents=True, exist_ok=True)
        self._panels.observer = self.mirror  # first: a press from now on is noted
        self._startup.launch()

    async def ready(self) -> None:
        """Wait for the start-up work; :class:`~nexflow.workspace.api.Unavailable` if it
        failed (the log has the traceback) or the service is not running."""
        await self._startup.wait()

    async def stop(self) -> None:
        """Cancel a start-up still running, stop observing, commit everything the mirror
        still holds, close the repos."""
        await self._startup.stop()
        if self._panels.observer is self.mirror:
            self._panels.observer = None
        await self.mirror.stop()
        await self._repos.aclose()

    # -- workspaces and sharing ------------------------------------------------------

    def workspace_path(self, user_id: str, name: str | None = None) -> Path:
        return self._repos.path(self._repos.key(user_id, name))

    async def workspaces(self, user_id: str) -> list[str]:
        await self._startup.wait()
        return self._repos.names(user_id)

    async def create_workspace(self, user_id: str, name: str) -> str:
        await self._startup.wait()
        key = self._repos.key(user_id, name)
        async with self._repos.locked(key):
            await self._repos.repo(key)
        return key

    async def share(self, owner: str, name: str, other_user: str) -> str:
        """Give ``other_user`` a branch ``share/<user>`` of the workspace (from main)."""
        await self._startup.wait()
        return await self.files.share(owner, name, other_user)

    async def shared_with(self, user_id: str) -> list[tuple[str, str]]:
        await self._startup.wait()
        return await self.files.shared_with(user_id)

    async def read_file(
        self, user_id: str, path: str, *, owner: str | None = None, name: str | None = None
    ) -> str | None:
        await self._startup.wait()
        return await self.files.read_file(user_id, path, owner=owner, name=name)

    async def write_file(
        self,
        user_id: str,
        path: str,
        text: str,
        *,
        owner: str | None = None,
        name: str | None = None,
    ) -> CommitInfo:
        """A user's own edit, on main (or on their share branch of someone's workspace)."""
        await self._startup.wait()
        return await self.files.write_file(user_id, path, text, owner=owner, name=name)

    # -- patches, history and restore (review.py, history.py) ------------------------

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
        A panel target is patched in its own workspace, a file in ``workspace``."""
        await self._startup.wait()
        return await self._review.propose(
            user_id, target, content, summary, source, workspace, idempotency_key=idempotency_key
        )

    async def patches(
        self, user_id: str | None = None, status: PatchStatus | None = None
    ) -> list[Patch]:
        await self._startup.wait()
        return await self._review.patches(user_id, status)

    async def get(self, patch_id: str) -> Patch:
        await self._startup.wait()
        return (await self._review.row(patch_id)).patch

    async def diff(self, patch_id: str) -> PatchDiff:
        await self._startup.wait()
        return await self._review.diff(patch_id)

    async def accept(self, patch_id: str, user_id: str) -> Patch:
        """Merge into main (rebasing first if main moved), then update the live panel."""
        await self._startup.wait()
        return await self._review.accept(patch_id, user_id)

    async def reject(self, patch_id: str, user_id: str) -> Patch:
        await self._startup.wait()
        return await self._review.reject(patch_id, user_id)

    async def history(self, user_id: str, panel_id: str, limit: int = 50) -> list[CommitInfo]:
        """Commits on main that changed the panel's files, newest first."""
        await self._startup.wait()
        return await self._history.history(user_id, panel_id, limit)

    async def restore(self, user_id: str, panel_id: str, sha: str) -> CommitInfo:
        """Bring a panel back to its version at ``sha`` as a new commit on main."""
        await self._startup.wait()
        return await self._history.restore(user_id, panel_id, sha)

    # -- the NOG and sync ------------------------------------------------------------

    async def nog(self, user_id: str, name: str | None = None) -> NexusObjectGraph:
        """The graph of one workspace (its panels and files); a named workspace must
        exist (:class:`~nexflow.workspace.api.NotFound`), the default one is created."""
        await self._startup.wait()
        key = self._repos.key(user_id, name)
        async with self._repos.locked(key):
            repo = await self._repos.repo(key, create=key == self._repos.key(user_id))
            await self.mirror.flush_locked(key, repo)
            return await self._repos.nog(key, repo)

    async def sync(self, user_id: str, panel_id: str) -> list[Patch]:
        """Explicit sync from one panel: one patch per target the model says is affected,
        all in the workspace the panel belongs to (its NOG is what the model sees)."""
        await self._startup.wait()
        if self._sync is None:
            raise SyncFailed("sync needs a language model, and none is wired in")
        record = owned_panel(self._panels, user_id, panel_id)
        workspace = record.workspace
        key = self._repos.key_of(record)
        async with self._repos.locked(key):
            repo = await self._repos.repo(key)
            await self.mirror.flush_locked(key, repo)
            await self.mirror.catch_up_locked(key, repo, [self._panels.get(panel_id)])
            graph = await self._repos.nog(key, repo)
            record = self._panels.get(panel_id)
            graph.update_panel(panel_id, self._panels.definition(panel_id), record.state)
            context = graph.to_context(focus=panel_id)
        versions = await self._panels.versions(panel_id, 1)
        change: dict[str, Any] = {}
        if versions:
            v = versions[0]
            changed = {
                k: {"before": clip(v.state_before.get(k)), "after": clip(v.state_after.get(k))}
                for k in sorted({*v.state_before, *v.state_after})
                if v.state_before.get(k) != v.state_after.get(k)
            }
            change = {"kind": v.kind, "tool": v.tool, "args": v.args, "changed": changed}
        messages = build_prompt(context, panel_id, record.state, change)

        async def check(answer: SyncAnswer) -> None:
            # Inside the model's correction round: a refused target is sent back to it.
            mine = [c for c in answer.changes if c.target != f"panel:{panel_id}"]
            await self._check_changes(
                user_id, workspace, key, [(c.target, c.content()) for c in mine]
            )

        answer = await self._sync.ask(user_id, panel_id, messages, check)
        wanted = [c for c in answer.changes if c.target != f"panel:{panel_id}"]
        source = f"sync:{panel_id}"
        created = [
            await self._review.propose(user_id, c.target, c.content(), c.summary, source, workspace)
            for c in wanted
        ]
        await self._audit.audit(
            [
                AuditRecord(
                    "workspace_sync",
                    panel_id,
                    "ok",
                    user_id,
                    None,
                    {"patches": [p.id for p in created], "targets": [p.target for p in created]},
                )
            ]
        )
        log.info("workspace_synced", panel=panel_id, patches=len(created))
        return created

    async def _check_changes(
        self, user_id: str, workspace: str, key: str, changes: Sequence[tuple[str, str]]
    ) -> None:
        """Refuse the whole answer (no patch at all) if any change would be refused,
        a panel of another workspace included."""
        problems: list[str] = []
        async with self._repos.locked(key):
            repo = await self._repos.repo(key)
            head = await in_thread(repo.head)
            assert head is not None
            for raw, content in changes:
                try:
                    target = parse_target(raw)
                    self.files.check_bytes(content)
                    if target.kind == "panel":
                        panel = owned_panel(self._panels, user_id, target.name)
                        self._review.target_key(user_id, panel, workspace)
                    await in_thread(patching.prepare_files, repo, head, target, content)
                except WorkspaceError as exc:
                    problems.append(f"{raw[:80]}: {exc.message}")
        if problems:
            raise SyncUnusable(
                "the model's sync answer was refused, no patch was made: " + "; ".join(problems),
                "try /sync again",
            )
