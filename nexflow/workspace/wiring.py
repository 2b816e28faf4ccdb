"""How the composition root builds the workspace layer (one call, explicit inputs).

Cheap on purpose: it returns a :class:`~nexflow.workspace.lazy.LazyWorkspaces` holding
the recipe; the service stack is imported and built by its start-up task (``lazy.py``).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from nexflow.workspace.api import PatchHooks
from nexflow.workspace.lazy import LazyWorkspaces

if TYPE_CHECKING:
    from nexflow.config.model import NexflowConfig
    from nexflow.panels.runtime import PanelService
    from nexflow.storage.sql_storage import SQLStorage
    from nexflow.workspace.service import WorkspaceService
    from nexflow.workspace.sync import ModelGate


def build_workspaces(
    config: NexflowConfig,
    storage: SQLStorage,
    panels: PanelService,
    gate: ModelGate,
    hooks: PatchHooks | None = None,
) -> LazyWorkspaces:
    """The workspace layer; ``await start()`` after storage opened and panels started,
    ``await stop()`` before the panels stop. ``gate``: the budget gate, for the sync's model
    call. ``hooks``: what other layers add to file patches (also ``LazyWorkspaces.hooks``,
    where they may be registered until the start-up task builds the service)."""
    hooks = hooks or PatchHooks()

    def build() -> WorkspaceService:
        # Imported already, in a worker thread, by the start-up task.
        from nexflow.workspace.repos import Repos
        from nexflow.workspace.service import WorkspaceService
        from nexflow.workspace.shared_lock import workspace_locks
        from nexflow.workspace.store import PatchStore
        from nexflow.workspace.sync import SyncModel

        settings = config.workspaces
        root = settings.root.expanduser() if settings.root else config.home / "workspaces"
        sync = SyncModel(settings, config.llm.routes, gate, storage)
        # On Postgres, replicas and workers share the volume: lock across processes too.
        repos = Repos(settings, root, workspace_locks(config.storage_url))
        return WorkspaceService(repos, panels, PatchStore(storage), sync, storage, hooks)

    return LazyWorkspaces(build, hooks)
