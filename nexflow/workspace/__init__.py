"""Workspaces: git repositories of panels and files, AI patches, the NOG, explicit sync.

    from nexflow.workspace.wiring import build_workspaces

    workspaces = build_workspaces(config, storage, panels, gate)  # lazy.py; gate: BudgetGate
    await workspaces.start()   # load the service, recovery and catch-up in the background
    patch = await workspaces.propose("u1", "panel:todo", '{"append": {"items": [...]}}',
                                     "Add a task", "chat")
    await workspaces.accept(patch.id, "u1")   # merge into main, the panel shows it
    patches = await workspaces.sync("u1", "todo")  # ask the model, one patch per target

Design, layout, lifecycle and guarantees: ``docs/workspaces.md``.

This package exports the contract only (``api.py``), so the surfaces that import it stay
cheap; the composition root calls ``nexflow.workspace.wiring.build_workspaces``, which
returns a ``nexflow.workspace.lazy.LazyWorkspaces``: its start-up task imports and starts
the service (``nexflow.workspace.service.WorkspaceService``), so the gateway answers
before any of it loads. The graph is ``nexflow.workspace.nog``. GitPython is loaded
when the first repository opens.

Exceptions (``code`` maps to an HTTP status at the edge, ``message`` is safe to show)::

    WorkspaceError            refused: bad target, invalid content, git failure (400)
    ├── PanelWorkspaceRefused  also a PanelRuntimeError: a new panel's workspace cannot
    │                         be created (mirror.py)
    ├── NotFound              no such patch / panel / commit / workspace (404)
    ├── Forbidden             not the owner of the workspace or patch (403)
    ├── QuotaExceeded         workspaces, panels, bytes or pending patches (409)
    │   └── PanelQuotaExceeded   also a PanelRuntimeError (refuses a new panel; mirror.py)
    ├── NotPending            accept/reject of a decided patch (409)
    ├── BudgetExhausted       sync needs background tokens and none are left (429)
    ├── SyncFailed            the model could not be reached during a sync (502)
    │   └── SyncUnusable      it answered, but nothing usable, twice (422)
    └── Unavailable           start-up (load, recovery) failed, or stopped, or the
                              cross-process lock could not be taken (503)
"""

from nexflow.workspace.api import (
    PATCH_STATUSES,
    BudgetExhausted,
    CommitInfo,
    Forbidden,
    NotFound,
    NotPending,
    Patch,
    PatchDiff,
    PatchStatus,
    QuotaExceeded,
    SyncFailed,
    SyncUnusable,
    Unavailable,
    WorkspaceError,
    Workspaces,
)

__all__ = [
    "PATCH_STATUSES",
    "BudgetExhausted",
    "CommitInfo",
    "Forbidden",
    "NotFound",
    "NotPending",
    "Patch",
    "PatchDiff",
    "PatchStatus",
    "QuotaExceeded",
    "SyncFailed",
    "SyncUnusable",
    "Unavailable",
    "WorkspaceError",
    "Workspaces",
]
