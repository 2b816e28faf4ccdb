import os
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

# litellm fetches a price map from the network on import unless told not to.
os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")

from nexflow.storage import SQLiteStorage
from nexflow.testing.fake_llm import FakeLLMServer
from nexflow.testing.harness import GatewayHarness

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture
async def fake_llm() -> AsyncIterator[FakeLLMServer]:
    server = FakeLLMServer()
    await server.start()
    yield server
    await server.stop()


@pytest.fixture
async def gateway(tmp_path: Path) -> AsyncIterator[GatewayHarness]:
    async with GatewayHarness(tmp_path / "home") as gw:
        yield gw


@pytest.fixture
async def storage(tmp_path: Path) -> AsyncIterator[SQLiteStorage]:
    """A fresh, open SQLite storage in the test's temporary directory."""
    store = SQLiteStorage(tmp_path / "nexflow.db")
    await store.open()
    yield store
    await store.close()


@pytest.fixture
async def providers() -> AsyncIterator[tuple[FakeLLMServer, FakeLLMServer]]:
    """Two model providers on loopback: ``strong`` and ``cheap``."""
    strong, cheap = FakeLLMServer(), FakeLLMServer()
    await strong.start()
    await cheap.start()
    yield strong, cheap
    await strong.stop()
    await cheap.stop()
