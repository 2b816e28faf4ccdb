"""Start-up in the background: recovery, the catch-up, then the mirror's worker.

The gateway must answer ``/health`` within a second of its spawn, and recovery plus a
git catch-up for every panel owner can take longer than that. So
:meth:`~nexflow.workspace.service.WorkspaceService.start` only attaches the mirror to the
panel service (no change is missed: presses are noted, bounded, while this runs) and
:class:`Startup` runs the rest as one task the service owns:

1. :class:`~nexflow.workspace.recovery.Recovery` (patch rows and branches agree again);
2. the catch-up of every workspace with panels (each panel belongs to one workspace of
   its owner), and of every other workspace of a known owner (its panels were all
   deleted); each first commits what the mirror noted for it meanwhile, under the same
   workspace lock, so a press made during start-up keeps its own commit message;
3. the mirror's worker starts (it commits whatever was noted for anyone else).

Every public operation of the service awaits :meth:`Startup.wait` first. When start-up
failed, the log has the traceback and every operation raises :class:`Unavailable`; the
panels keep working (their changes stay in the panel store and the next start catches
main up). ``stop()`` cancels a start-up still running.
"""

from __future__ import annotations

import re
import time
from collections.abc import Sequence

import structlog

from nexflow.panels.runtime import PanelService
from nexflow.workspace.background import BackgroundStart, State
from nexflow.workspace.layout import user_dir
from nexflow.workspace.mirror import PanelMirror
from nexflow.workspace.recovery import Recovery
from nexflow.workspace.repos import Repos

log = structlog.get_logger("nexflow.workspace")


class Startup:
    def __init__(
        self, repos: Repos, panels: PanelService, mirror: PanelMirror, recovery: Recovery
    ) -> None:
        self._repos = repos
        self._panels = panels
        self._mirror = mirror
        self._recovery = recovery
        self._start = BackgroundStart(
            "workspace-start",
            "the workspaces could not start: recovering them failed, so patches, "
            "history and sync are off until the gateway restarts",
            root=str(repos.root),
        )

    @property
    def state(self) -> State:
        return self._start.state

    def launch(self) -> None:
        self._start.launch(self._run)

    async def wait(self) -> None:
        """Return once start-up succeeded; :class:`Unavailable` if it failed or the
        service is not running. Waiting never cancels the start-up itself."""
        await self._start.wait()

    async def stop(self) -> None:
        """Cancel a start-up still running and wait for it to end."""
        await self._start.stop()

    async def _run(self) -> None:
        began = time.perf_counter()
        await self._recovery.run()
        used = sorted({(r.owner, r.workspace) for r in self._panels.instances()})
        for owner, name in used:
            await self._mirror.catch_up(owner, name)
        owners = sorted({owner for owner, _ in used})
        for owner, name in self._orphans(owners, used):  # every panel deleted, not mirrored
            await self._mirror.catch_up(owner, name, create=False)
        self._mirror.start()
        log.info(
            "workspaces_ready",
            root=str(self._repos.root),
            owners=len(owners),
            workspaces=len(used),
            seconds=round(time.perf_counter() - began, 3),
        )

    def _orphans(
        self, owners: Sequence[str], used: Sequence[tuple[str, str]]
    ) -> list[tuple[str, str]]:
        """Workspaces on disk that no panel in the store belongs to, as (owner, name):
        those of an owner with panels elsewhere, and those whose directory is the user
        id (a hashed directory of a user without panels cannot be traced back, and is
        left)."""
        done = {self._repos.path(self._repos.key(o, n)) for o, n in used}
        by_dir = {user_dir(o): o for o in owners}
        found = []
        for dir_name, path in self._repos.existing():
            if path in done:
                continue
            owner = by_dir.get(dir_name)
            if owner is None and re.fullmatch(r"u-[0-9a-f]{16}", dir_name) is None:
                owner = dir_name
            if owner is not None and self._repos.path(self._repos.key(owner, path.name)) == path:
                found.append((owner, path.name))
        return found
