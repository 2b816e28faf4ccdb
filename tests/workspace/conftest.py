"""Fixtures for workspaces: a real PanelService (SQLite, then Postgres; a real sandbox), real
git repositories under a temporary home, real budgets, and the fake LLM over loopback for
sync."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from ws_support import Env, StartWith

from nexflow.config.model import BudgetsConfig, WorkspacesConfig
from nexflow.panels.runtime import PanelService
from nexflow.sandbox import build_guest
from nexflow.storage.sql_storage import SQLStorage
from nexflow.workspace.service import WorkspaceService


@pytest.fixture(scope="session")
def sandbox_cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    build_guest()  # a no-op when the guest is up to date
    return tmp_path_factory.mktemp("ws-sandbox-cache")


@pytest.fixture
async def env(storage: SQLStorage, sandbox_cache: Path, tmp_path: Path) -> AsyncIterator[Env]:
    e = Env(tmp_path, storage, sandbox_cache)
    yield e
    await e.stop()


@pytest.fixture
async def ws(env: Env) -> WorkspaceService:
    return await env.start()


@pytest.fixture
def panels(env: Env, ws: WorkspaceService) -> PanelService:
    assert env.panels is not None
    return env.panels


@pytest.fixture
def start_with(env: Env) -> StartWith:
    """Start the env with other quotas/budgets: ``await start_with(max_panels=1)``."""

    async def start(*, budgets: BudgetsConfig | None = None, **quotas: object) -> WorkspaceService:
        env.config = WorkspacesConfig.model_validate(quotas)
        if budgets is not None:
            env.budgets = budgets
        return await env.start()

    return start
