"""One start-up task and its outcome, shared by the lazy facade (import and build the
service) and the service's own start-up (recovery and catch-up).

``launch(work)`` starts ``work`` once; ``wait()`` returns when it succeeded and raises
:class:`~nexflow.workspace.api.Unavailable` when it failed (the log has the traceback)
or is not running; waiting never cancels the work. ``stop()`` cancels work still
running and waits for it to end.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any, Literal

import structlog

from nexflow.workspace.api import Unavailable

log = structlog.get_logger("nexflow.workspace")

State = Literal["stopped", "starting", "ready", "failed"]


class BackgroundStart:
    def __init__(self, name: str, failed: str, **log_fields: Any) -> None:
        self._name = name
        self._failed = failed  # what a caller is told when the work failed
        self._log_fields = log_fields
        self._task: asyncio.Task[None] | None = None
        self._settled = asyncio.Event()  # set when the state leaves "starting"
        self.state: State = "stopped"

    def launch(self, work: Callable[[], Awaitable[None]]) -> None:
        if self._task is not None:
            return
        self.state = "starting"
        self._settled.clear()
        self._task = asyncio.create_task(self._run(work), name=self._name)

    async def wait(self) -> None:
        await self._settled.wait()
        if self.state == "failed":
            raise Unavailable(self._failed, "see the gateway log")
        if self.state != "ready":
            raise Unavailable("the workspaces are not running")

    async def stop(self) -> None:
        task, self._task = self._task, None
        if task is None:
            return
        task.cancel()  # a no-op when it is done
        try:
            await task
        except asyncio.CancelledError:
            if not task.cancelled():  # our own caller is being cancelled
                raise
        finally:
            self._settle("stopped")

    async def _run(self, work: Callable[[], Awaitable[None]]) -> None:
        try:
            await work()
        except Exception:
            log.exception("workspaces_start_failed", **self._log_fields)
            self._settle("failed")
            return
        self._settle("ready")

    def _settle(self, state: State) -> None:
        self.state = state
        self._settled.set()
