"""Sandbox fixtures. The guest is built by scripts/build_guest.sh if needed
(a no-op when it is up to date), so the suite never skips for a missing guest."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from nexflow.sandbox import DEFAULT_GUEST_PATH, build_guest
from nexflow.sandbox.engine import SandboxEngine


@pytest.fixture(scope="session")
def guest_path() -> Path:
    build_guest()
    assert DEFAULT_GUEST_PATH.is_file()
    return DEFAULT_GUEST_PATH


@pytest.fixture(scope="session")
def sandbox_cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("sandbox-cache")


@pytest.fixture(scope="session")
def sandbox(guest_path: Path, sandbox_cache: Path) -> Iterator[SandboxEngine]:
    with SandboxEngine(cache_dir=sandbox_cache, guest_path=guest_path) as engine:
        yield engine
