"""``LazyWorkspaces``: the workspace layer as the composition root holds it.

The service stack (GitPython aside, some 45 ms of pydantic models and module bodies:
the NOG, sync, patching, the mirror, …) is not imported while the gateway starts, which
must answer ``/health`` within a second of its spawn. This object costs nothing to
build; :meth:`LazyWorkspaces.start` launches one task, owned here, that

1. imports ``nexflow.workspace.service`` in a worker thread (the loop keeps serving);
2. builds the :class:`~nexflow.workspace.service.WorkspaceService` on the loop, with the
   ``build`` callable the wiring hands in;
3. starts it: the mirror observes the panel service from then on, and recovery plus the
   catch-up run in the service's own background task (``startup.py``).

A panel change made before step 3 is not noted by the mirror, but it is in the panel
store, and the catch-up commits whatever the store has that ``main`` shows otherwise.

Every operation awaits the task, then delegates (the service itself then waits for its
recovery and catch-up). When the task failed, the log has ``workspaces_start_failed``
with the traceback and every operation raises
:class:`~nexflow.workspace.api.Unavailable`; ``stop()`` cancels the task if it still runs
and stops the service if it was started.
"""

from __future__ import annotations

import asyncio
import importlib
from collections.abc import Callable
from typing import TYPE_CHECKING

from nexflow.workspace.api import (
    CommitInfo,
    GraphContext,
    Patch,
    PatchDiff,
    PatchHooks,
    PatchStatus,
    Unavailable,
)
from nexflow.workspace.background import BackgroundStart, State

if TYPE_CHECKING:
    from nexflow.workspace.service import WorkspaceService

SERVICE_MODULE = "nexflow.workspace.service"  # imports the whole stack but GitPython


class LazyWorkspaces:
    """Implements :class:`~nexflow.workspace.api.Workspaces`; ``await start()`` after the
    panels started, ``await stop()`` before they stop. :meth:`service` reaches the rest
    (the NOG, files, sharing, workspace paths)."""

    def __init__(
        self, build: Callable[[], WorkspaceService], hooks: PatchHooks | None = None
    ) -> None:
        self._build = build
        # the same object ``build`` hands the service (wiring.py): what is added here runs
        self.hooks = hooks or PatchHooks()
        self._service: WorkspaceService | None = None
        self._start = BackgroundStart(
            "workspace-load",
            "the workspaces could not start: loading them failed, so patches, "
            "history and sync are off until the gateway restarts",
            stage="load",
        )

    @property
    def state(self) -> State:
        return self._start.state

    # -- lifecycle ------------------------------------------------------------------

    async def start(self) -> None:
        """Launch the start-up task and return at once."""
        self._start.launch(self._load)

    async def stop(self) -> None:
        """Cancel a start-up still running, then stop the service if it was started.
        An import still running in its thread finishes there, unused."""
        await self._start.stop()
        service, self._service = self._service, None
        if service is not None:
            await service.stop()

    async def service(self) -> WorkspaceService:
        """The started service, once the start-up task built it (its recovery and
        catch-up may still run: its operations wait for them);
        :class:`~nexflow.workspace.api.Unavailable` if it failed or is not running."""
        await self._start.wait()
        if self._service is None:
            raise Unavailable("the workspaces are not running")
        return self._service

    async def ready(self) -> None:
        """Wait until the service is built and its recovery and catch-up ran."""
        await (await self.service()).ready()

    async def _load(self) -> None:
        await asyncio.to_thread(importlib.import_module, SERVICE_MODULE)
        service = self._build()  # on the loop: the service's asyncio objects live here
        await service.start()  # the mirror observes the panels from here on
        self._service = service

    # -- Workspaces ------------------------------------------------------------------

    async def sync(self, user_id: str, panel_id: str) -> list[Patch]:
        return await (await self.service()).sync(user_id, panel_id)

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
        service = await self.service()
        return await service.propose(
            user_id, target, content, summary, source, workspace, idempotency_key=idempotency_key
        )

    async def patches(
        self, user_id: str | None = None, status: PatchStatus | None = None
    ) -> list[Patch]:
        return await (await self.service()).patches(user_id, status)

    async def diff(self, patch_id: str) -> PatchDiff:
        return await (await self.service()).diff(patch_id)

    async def accept(self, patch_id: str, user_id: str) -> Patch:
        return await (await self.service()).accept(patch_id, user_id)

    async def reject(self, patch_id: str, user_id: str) -> Patch:
        return await (await self.service()).reject(patch_id, user_id)

    async def history(self, user_id: str, panel_id: str, limit: int = 50) -> list[CommitInfo]:
        return await (await self.service()).history(user_id, panel_id, limit)

    async def restore(self, user_id: str, panel_id: str, sha: str) -> CommitInfo:
        return await (await self.service()).restore(user_id, panel_id, sha)

    async def nog(self, user_id: str, name: str | None = None) -> GraphContext:
        return await (await self.service()).nog(user_id, name)
