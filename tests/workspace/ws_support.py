"""Helpers shared by the workspace tests (a uniquely named module: every test directory
has a ``conftest``)."""

from __future__ import annotations

import functools
import json
import subprocess
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path

from git import Repo

from nexflow.config.model import (
    BudgetsConfig,
    LLMConfig,
    ModelProfile,
    PanelsConfig,
    WorkspacesConfig,
)
from nexflow.llm.budget import Budgets
from nexflow.llm.gate import BudgetGate
from nexflow.llm.litellm_client import LiteLLMLoader
from nexflow.llm.resolver import ModelResolver
from nexflow.panels.runtime import PanelService, PanelStore
from nexflow.panels.runtime.wiring import BUNDLED_TEMPLATES
from nexflow.sandbox.engine import SandboxEngine
from nexflow.storage.sql_storage import SQLStorage
from nexflow.testing.fake_llm import FakeLLMServer
from nexflow.workspace.api import PatchHooks
from nexflow.workspace.repos import Repos
from nexflow.workspace.service import WorkspaceService
from nexflow.workspace.store import PatchStore
from nexflow.workspace.sync import SyncModel

USER = "u1"


@dataclass
class Env:
    """Everything one test needs; :meth:`restart` simulates a process restart."""

    tmp: Path
    storage: SQLStorage
    cache: Path
    config: WorkspacesConfig = field(default_factory=WorkspacesConfig)
    budgets: BudgetsConfig = field(default_factory=BudgetsConfig)
    llm: FakeLLMServer | None = None
    panels: PanelService | None = None
    ws: WorkspaceService | None = None
    models: ModelResolver | None = None
    hooks: PatchHooks = field(default_factory=PatchHooks)  # the service's, shared

    @property
    def root(self) -> Path:
        return self.tmp / "home" / "workspaces"

    async def start(self, *, ready: bool = True) -> WorkspaceService:
        """Start panels and workspaces; ``ready`` also waits for the workspaces'
        background start-up (recovery, catch-up), as tests that read git right away need."""
        await self.start_panels()
        ws = self.build()
        await ws.start()
        if ready:
            await ws.ready()
        return ws

    async def start_panels(self) -> PanelService:
        self.panels = PanelService(
            PanelStore(self.storage),
            PanelsConfig(),
            engine_factory=functools.partial(SandboxEngine, cache_dir=self.cache),
            templates_dir=BUNDLED_TEMPLATES,
            workspace_dir=self.tmp / "agent-workspace",
        )
        await self.panels.start()
        return self.panels

    def build(self) -> WorkspaceService:
        """The service over the started panels, not started (``stop()`` stops it)."""
        assert self.panels is not None
        sync = None
        if self.llm is not None:
            profile = ModelProfile.model_validate(
                {
                    "model": "openai/cheap",
                    "api_base": self.llm.base_url,
                    "api_key": "k",
                    "client": "openai",
                }
            )
            llm_config = LLMConfig(
                models={"cheap": profile}, routes={"sync": "cheap"}, stream=False
            )
            self.models = ModelResolver(llm_config, LiteLLMLoader())
            budgets = Budgets(self.budgets, self.storage)
            gate = BudgetGate(self.models, budgets, llm_config)
            sync = SyncModel(self.config, llm_config.routes, gate, self.storage)
        self.ws = WorkspaceService(
            Repos(self.config, self.root),
            self.panels,
            PatchStore(self.storage),
            sync,
            self.storage,
            self.hooks,
        )
        return self.ws

    async def stop(self) -> None:
        if self.ws is not None:
            await self.ws.stop()
            self.ws = None
        if self.panels is not None:
            await self.panels.stop()
            self.panels = None
        if self.models is not None:
            await self.models.close()
            self.models = None

    async def restart(self) -> WorkspaceService:
        await self.stop()
        return await self.start()


StartWith = Callable[..., Awaitable[WorkspaceService]]


def on_main(path: Path) -> set[str]:
    """The files of main's head commit."""
    out = subprocess.run(
        ["git", "ls-tree", "-r", "--name-only", "main"],
        cwd=path,
        capture_output=True,
        text=True,
        check=True,
    )
    return set(out.stdout.split())


def state_on_main(path: Path, panel: str) -> object:
    """A panel's state file as main has it."""
    out = subprocess.run(
        ["git", "show", f"main:panels/{panel}.state.json"],
        cwd=path,
        capture_output=True,
        text=True,
        check=True,
    )
    return json.loads(out.stdout)


def messages(path: Path) -> list[str]:
    """main's commit messages, newest first."""
    repo = Repo(path)
    try:
        return [str(c.message).strip() for c in repo.iter_commits("main")]
    finally:
        repo.close()


def head_message(path: Path) -> str | None:
    """main's latest message; None while the repository is still being made."""
    if not (path / ".git").exists():
        return None
    out = subprocess.run(
        ["git", "log", "-1", "--format=%B", "main"],
        cwd=path,
        capture_output=True,
        text=True,
        check=False,
    )
    return out.stdout.strip() if out.returncode == 0 else None


async def todo_mirrored(env: Env) -> Path:
    """Start, create USER's todo panel, mirror it to main, stop: its workspace's path."""
    ws = await env.start()
    assert env.panels is not None
    await env.panels.create(template="todo", owner=USER)
    await ws.mirror.flush()
    path = ws.workspace_path(USER)
    await env.stop()
    return path
