"""Fixtures for the web API tests: ``gw`` (the owner plus web user Carol) and ``carol``
(an HTTP client with her token). A module that needs more config overrides ``gw``."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
from web_users import as_carol, gateway_with_carol

from nexflow.testing.harness import GatewayHarness


@pytest.fixture
async def gw(tmp_path: Path) -> AsyncIterator[GatewayHarness]:
    async with gateway_with_carol(tmp_path) as harness:
        yield harness


@pytest.fixture
async def carol(gw: GatewayHarness) -> AsyncIterator[httpx.AsyncClient]:
    async with as_carol(gw) as client:
        yield client
