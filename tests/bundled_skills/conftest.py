"""Fixtures for the bundled-skill tests; the helpers are in ``bundled_support``."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from bundled_support import LEVELS, short_dir

from nexflow.skills.isolation import IsolationLevel


@pytest.fixture(params=LEVELS, ids=[lv.value for lv in LEVELS])
def level(request: pytest.FixtureRequest) -> IsolationLevel:
    """Each isolation level a test runs at: ``none`` and the best this host has."""
    return request.param  # type: ignore[no-any-return]


@pytest.fixture
def scratch() -> Iterator[Path]:
    with short_dir() as base:
        yield base


@pytest.fixture
def workspace(scratch: Path) -> Path:
    """The skill's workspace, on a short path (unix sockets live there)."""
    ws = scratch / "ws"
    ws.mkdir()
    return ws


@pytest.fixture
def home(scratch: Path) -> Path:
    """A gateway's home (not created: :func:`bundled_support.skill_gateway` makes it)."""
    return scratch / "home"
