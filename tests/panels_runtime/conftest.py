"""Fixtures for the panel runtime: a PanelService on real storage (SQLite, then Postgres)
and sandbox, and a real gateway (GatewayHarness) sharing one precompiled sandbox cache."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from runtime_support import make_service

from nexflow.panels.runtime import PanelService
from nexflow.sandbox import build_guest
from nexflow.storage.sql_storage import SQLStorage
from nexflow.testing.harness import GatewayHarness


@pytest.fixture(scope="session")
def sandbox_cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    build_guest()  # a no-op when the guest is up to date
    return tmp_path_factory.mktemp("panel-sandbox-cache")


@pytest.fixture
async def service(
    storage: SQLStorage, sandbox_cache: Path, tmp_path: Path
) -> AsyncIterator[PanelService]:
    svc = make_service(storage, sandbox_cache, tmp_path / "workspace")
    await svc.start()
    yield svc
    await svc.stop()


@pytest.fixture
async def gw(tmp_path: Path, sandbox_cache: Path) -> AsyncIterator[GatewayHarness]:
    env = {"NEXFLOW_PANELS__CACHE_DIR": str(sandbox_cache)}
    async with GatewayHarness(tmp_path / "home", env=env) as harness:
        yield harness
