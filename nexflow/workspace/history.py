"""A panel's history on main, and restoring one of its versions as a new commit.

History is never rewritten: ``restore`` commits the panel's files at an older commit of
main as a new commit and gives the live panel a version of kind ``restore``
(``docs/workspaces.md#history-and-restore``). Both work in the workspace the panel
belongs to; the history of a deleted panel is looked up in its owner's workspaces, the
default one first.
"""

from __future__ import annotations

from nexflow.panels.runtime import PanelService
from nexflow.panels.runtime.errors import PanelInvalid, StateRejected
from nexflow.panels.runtime.state import check_state, load_panel
from nexflow.workspace import patching
from nexflow.workspace.api import CommitInfo, NotFound, WorkspaceError
from nexflow.workspace.files import commit_info
from nexflow.workspace.layout import author_name, dump_state, load_state, panel_files
from nexflow.workspace.mirror import PanelMirror
from nexflow.workspace.repos import Repos, in_thread
from nexflow.workspace.review import has_panel, owned_panel


class PanelHistory:
    def __init__(self, repos: Repos, panels: PanelService, mirror: PanelMirror) -> None:
        self._repos = repos
        self._config = repos.config
        self._panels = panels
        self._mirror = mirror

    async def history(self, user_id: str, panel_id: str, limit: int = 50) -> list[CommitInfo]:
        """Commits on main that changed the panel's files, newest first."""
        if has_panel(self._panels, panel_id):
            keys = [self._repos.key_of(owned_panel(self._panels, user_id, panel_id))]
        else:  # deleted: its files are still in the history of the workspace it was in
            default = self._repos.key(user_id)
            named = [self._repos.key(user_id, n) for n in self._repos.names(user_id)]
            keys = [default, *(k for k in named if k != default)]
        for key in keys:
            async with self._repos.locked(key):
                repo = await self._repos.repo(key, create=key == keys[0])
                await self._mirror.flush_locked(key, repo)
                metas = await in_thread(repo.log, "refs/heads/main", panel_files(panel_id), limit)
            if metas:
                return [commit_info(m) for m in metas]
        raise NotFound(f"panel {panel_id!r} has no history in {keys[0]}")

    async def restore(self, user_id: str, panel_id: str, sha: str) -> CommitInfo:
        """Bring a panel back to its version at ``sha`` as a new commit on main."""
        record = owned_panel(self._panels, user_id, panel_id)
        key = self._repos.key_of(record)
        nxml_path, state_path = panel_files(panel_id)
        async with self._repos.locked(key):
            repo = await self._repos.repo(key)
            await self._mirror.flush_locked(key, repo)
            full = await in_thread(repo.head, sha) if len(sha) >= 4 else None
            main = await in_thread(repo.head)
            if full is None or main is None or not await in_thread(repo.is_ancestor, full, main):
                raise NotFound(f"{sha[:40]!r} is not a commit in the history of {key}")
            nxml = await in_thread(repo.read, full, nxml_path)
            state_text = await in_thread(repo.read, full, state_path)
            if nxml is None or state_text is None:
                raise NotFound(f"panel {panel_id!r} did not exist at {full[:10]}")
            state = load_state(state_text)
            try:
                check_state(load_panel(nxml), state)
            except (PanelInvalid, StateRejected) as exc:
                raise WorkspaceError(f"that version cannot be restored: {exc.message}") from exc
            files: dict[str, str | None] = {nxml_path: nxml, state_path: dump_state(state)}
            new = await in_thread(
                patching.commit_main,
                repo,
                files,
                f"Restore panel {panel_id} to {full[:10]} by {user_id}",
                author_name(user_id),
                self._config.max_bytes,
                allow_empty=True,
            )
            assert new is not None
            applied = await self._panels.apply_change(
                panel_id,
                state=state,
                nxml=nxml if nxml != record.nxml else None,
                kind="restore",
                replace=True,
                user_id=user_id,
                args={"commit": full},
            )
            graph = self._repos.loaded_nog(key)
            if graph is not None:
                self._mirror.refresh_graph(graph, applied)
            return commit_info(await in_thread(repo.meta, new))
