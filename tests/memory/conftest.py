from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from nexflow.memory import MemoryService
from nexflow.memory.embedder import OpenAICompatEmbedder
from nexflow.testing.fake_llm import FakeLLMServer


@pytest.fixture
async def keyword_memory(tmp_path: Path) -> AsyncIterator[MemoryService]:
    service = MemoryService(tmp_path / "memory.db", tmp_path / "workspace", None)
    await service.start()
    yield service
    await service.stop()


@pytest.fixture
async def hybrid_memory(tmp_path: Path, fake_llm: FakeLLMServer) -> AsyncIterator[MemoryService]:
    embedder = OpenAICompatEmbedder(fake_llm.base_url, "openai/fake-embedding", "test-key")
    service = MemoryService(tmp_path / "memory.db", tmp_path / "workspace", embedder)
    await service.start()
    yield service
    await service.stop()
