"""A gateway with a second web user, Carol (config ``web.users``), for the API tests that
check one user's data stays theirs."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import httpx
import yaml

from nexflow.testing.harness import GatewayHarness

CAROL = "carol-web-token-0123456789abcdef"
BASE: dict[str, Any] = {"web": {"users": {"carol": CAROL}}, "memory": {"paging": False}}


@asynccontextmanager
async def gateway_with_carol(
    tmp_path: Path, extra: dict[str, Any] | None = None
) -> AsyncIterator[GatewayHarness]:
    """The owner on loopback plus Carol; ``extra`` adds top-level config sections."""
    path = tmp_path / "config.yml"
    path.write_text(yaml.safe_dump({**BASE, **(extra or {})}))
    async with GatewayHarness(tmp_path / "home", config_file=path) as harness:
        yield harness


@asynccontextmanager
async def as_carol(gw: GatewayHarness) -> AsyncIterator[httpx.AsyncClient]:
    headers = {"Authorization": f"Bearer {CAROL}"}
    async with httpx.AsyncClient(base_url=gw.url, headers=headers, timeout=30) as client:
        yield client
