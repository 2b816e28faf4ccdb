"""Fixtures for the importer tests (helpers: ``importers_support.py``)."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from importers_support import HOMES


@pytest.fixture
def source_copy(tmp_path: Path):  # type: ignore[no-untyped-def]
    """Copy a fixture home into the test's folder, to change it freely."""

    def copy(tool: str) -> Path:
        dest = tmp_path / "source" / tool
        shutil.copytree(HOMES / tool, dest, symlinks=True)
        return dest

    return copy


@pytest.fixture
def home(tmp_path: Path) -> Path:
    path = tmp_path / "nexflow-home"
    path.mkdir()
    return path
