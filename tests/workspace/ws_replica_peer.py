"""One replica of the workspace layer, for tests/workspace/test_workspace_replicas.py.

Every process builds its own workspace service the way the gateway and ``nexflow worker``
do (``nexflow.workspace.wiring.build_workspaces`` on Postgres storage, hence the
cross-process lock), over a real PanelService, on a shared ``workspaces.root``:

    python ws_replica_peer.py work URL ROOT HOME CACHE TAG N
        prints "ready", waits for a line on stdin, then N rounds of: increment
        counter.txt (read, then write with base=, again on Stale), write notes/TAG-i.txt,
        propose and accept file patches/TAG-i.txt; prints {"retries": n} and exits 0.
        Any other error ends it with a traceback and exit status 1.
    python ws_replica_peer.py write URL ROOT HOME CACHE PATH TEXT
        writes one file on main, packs the repository (git gc), prints "done".
    python ws_replica_peer.py hold URL ROOT KEY
        takes workspace KEY's lock (Repos.locked) and prints "locked", then waits to be
        killed.

``NEXFLOW_TEST_LOCAL_LOCK=1`` builds the in-process lock only (what the tests check
against by hand: docs/scale-out.md, "Workspaces on a shared volume").
"""

from __future__ import annotations

import asyncio
import functools
import json
import os
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

from nexflow.config.model import NexflowConfig, PanelsConfig, WorkspacesConfig
from nexflow.llm.budget import Budgets
from nexflow.llm.gate import BudgetGate
from nexflow.llm.litellm_client import LiteLLMLoader
from nexflow.llm.resolver import ModelResolver
from nexflow.panels.runtime import PanelService, PanelStore
from nexflow.panels.runtime.wiring import BUNDLED_TEMPLATES
from nexflow.sandbox.engine import SandboxEngine
from nexflow.storage.open import storage_for
from nexflow.workspace import shared_lock
from nexflow.workspace.api import Stale
from nexflow.workspace.repos import Repos
from nexflow.workspace.service import WorkspaceService
from nexflow.workspace.wiring import build_workspaces

USER = "u1"

if os.environ.get("NEXFLOW_TEST_LOCAL_LOCK") == "1":
    shared_lock.workspace_locks = lambda url: shared_lock.LocalLocks()  # type: ignore[assignment]


@asynccontextmanager
async def replica(url: str, root: Path, home: Path, cache: Path) -> AsyncIterator[WorkspaceService]:
    """A started workspace service built by the composition root's wiring."""
    config = NexflowConfig.model_validate(
        {"home": str(home), "storage": {"url": url}, "workspaces": {"root": str(root)}}
    )
    storage = storage_for(config)  # as the gateway and the worker open it
    await storage.open()
    panels = PanelService(
        PanelStore(storage),
        PanelsConfig(),
        engine_factory=functools.partial(SandboxEngine, cache_dir=cache),
        templates_dir=BUNDLED_TEMPLATES,
        workspace_dir=home / "agent-workspace",
    )
    await panels.start()
    models = ModelResolver(config.llm, LiteLLMLoader())
    gate = BudgetGate(models, Budgets(config.budgets, storage), config.llm)
    lazy = build_workspaces(config, storage, panels, gate)
    await lazy.start()
    try:
        await lazy.ready()
        yield await lazy.service()
    finally:
        await lazy.stop()
        await panels.stop()
        await models.close()
        await storage.close()


async def increment(ws: WorkspaceService) -> int:
    """Read counter.txt and write it plus one, based on what was read; the retries."""
    retries = 0
    while True:
        current = await ws.browser.read(USER, "default", "counter.txt")
        try:
            await ws.browser.write(
                USER, "default", "counter.txt", str(int(current.content) + 1), base=current.sha
            )
            return retries
        except Stale:
            retries += 1


async def work(url: str, root: str, home: str, cache: str, tag: str, n: str) -> None:
    async with replica(url, Path(root), Path(home), Path(cache)) as ws:
        print("ready", flush=True)
        await asyncio.to_thread(sys.stdin.readline)
        retries = 0
        for i in range(int(n)):
            retries += await increment(ws)
            await ws.write_file(USER, f"notes/{tag}-{i}.txt", f"{tag} note {i}\n")
            patch = await ws.propose(
                USER, f"file:patches/{tag}-{i}.txt", f"{tag} patch {i}\n", f"{tag} {i}", "test"
            )
            await ws.accept(patch.id, USER)
    print(json.dumps({"retries": retries}), flush=True)


async def write(url: str, root: str, home: str, cache: str, path: str, text: str) -> None:
    async with replica(url, Path(root), Path(home), Path(cache)) as ws:
        await ws.write_file(USER, path, text)
        repos: Repos = ws._repos
        key = repos.key(USER)
        async with repos.locked(key):
            repo = await repos.repo(key)
            done = await asyncio.to_thread(repo.maintain, 0)
            assert done.ran
    print("done", flush=True)


async def hold(url: str, root: str, key: str) -> None:
    repos = Repos(WorkspacesConfig(), Path(root), shared_lock.workspace_locks(url))
    async with repos.locked(key):
        print("locked", flush=True)
        await asyncio.Event().wait()


if __name__ == "__main__":
    import structlog

    structlog.configure(logger_factory=structlog.PrintLoggerFactory(sys.stderr))  # stdout: ours
    command, *args = sys.argv[1:]
    commands = {"work": work, "write": write, "hold": hold}
    asyncio.run(commands[command](*args))
