"""Fixtures for the MVP skill tests: bundled skills run through the real SkillRunner."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pytest
from mvp_support import LEVELS, RunSkill, bundled, make_runner

from nexflow.skills.isolation import IsolationLevel
from nexflow.skills.result import RunResult


@pytest.fixture
def workspace(tmp_path: Path) -> Path:
    ws = tmp_path.resolve() / "workspace"
    ws.mkdir()
    return ws


@pytest.fixture(params=LEVELS, ids=[lv.value for lv in LEVELS])
def level(request: pytest.FixtureRequest) -> IsolationLevel:
    return request.param  # type: ignore[no-any-return]


@pytest.fixture
def run_skill(workspace: Path) -> RunSkill:
    async def run(
        name: str,
        payload: Mapping[str, Any],
        *,
        level: IsolationLevel = IsolationLevel.NONE,
        secrets: Mapping[str, str] | None = None,
    ) -> RunResult:
        skill = bundled(name, secrets)
        return await make_runner(level).run(skill, payload, workspace=workspace, secrets=secrets)

    return run
