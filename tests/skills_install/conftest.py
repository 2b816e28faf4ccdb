"""Fixtures for the verified-install tests: a Nexflow home and hostile skill folders."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from install_support import FIXTURES

from nexflow.skills.install import Installer


@pytest.fixture
def home(tmp_path: Path) -> Path:
    path = tmp_path / "home"
    path.mkdir()
    return path


@pytest.fixture
def installer(home: Path) -> Installer:
    return Installer.at_home(home)


@pytest.fixture
def fixture_copy(tmp_path: Path):  # type: ignore[no-untyped-def]
    """Copy a fixture folder somewhere writable (tests may edit the source)."""

    def copy(name: str, dest_name: str | None = None) -> Path:
        dest = tmp_path / "sources" / (dest_name or name)
        shutil.copytree(FIXTURES / name, dest)
        return dest

    return copy
