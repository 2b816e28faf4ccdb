"""Fixtures for the skills tests."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from skills_support import LEVELS, MakeSkill, write_skill

from nexflow.skills.isolation import IsolationLevel


@pytest.fixture
def make_skill(tmp_path: Path) -> MakeSkill:
    def make(name: str, **kwargs: Any) -> Path:
        return write_skill(tmp_path / "skills", name, **kwargs)

    return make


@pytest.fixture
def workspace(tmp_path: Path) -> Path:
    ws = tmp_path.resolve() / "workspace"
    ws.mkdir()
    return ws


@pytest.fixture(params=LEVELS, ids=[lv.value for lv in LEVELS])
def level(request: pytest.FixtureRequest) -> IsolationLevel:
    return request.param  # type: ignore[no-any-return]
