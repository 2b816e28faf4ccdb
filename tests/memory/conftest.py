import asyncio
from collections.abc import AsyncIterator, Iterator, Sequence
from pathlib import Path

import pytest

from nexflow.memory import MemoryService
from nexflow.memory.embedder import OpenAICompatEmbedder
from nexflow.memory.local_embedder import DEFAULT_MODEL, LocalEmbedder, local_model_problem
from nexflow.memory.torch_embedder import TORCH_MODEL
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


@pytest.fixture(scope="session")
def local_embedder() -> Iterator[LocalEmbedder]:
    """The real multilingual-e5-small (extra embed-local), loaded once for the whole run."""
    problem = local_model_problem(DEFAULT_MODEL)
    assert problem is None, f"{problem} (scripts/setup.sh test installs it)"
    embedder = LocalEmbedder()
    yield embedder
    asyncio.run(embedder.close())


@pytest.fixture(scope="session")
def torch_embedder() -> Iterator[LocalEmbedder]:
    """The opt-in all-MiniLM-L6-v2 with torch (extra embed-torch), loaded once."""
    problem = local_model_problem(TORCH_MODEL)
    assert problem is None, f"{problem} (scripts/setup.sh test installs it)"
    embedder = LocalEmbedder(TORCH_MODEL)
    yield embedder
    asyncio.run(embedder.close())


class _Borrowed:
    """Lends the session's local embedder to a MemoryService, which closes what it gets."""

    def __init__(self, inner: LocalEmbedder) -> None:
        self._inner = inner

    @property
    def name(self) -> str:
        return self._inner.name

    async def embed(self, texts: Sequence[str]) -> list[list[float]]:
        return await self._inner.embed(texts)

    async def close(self) -> None:
        return None


@pytest.fixture
async def local_memory(
    tmp_path: Path, local_embedder: LocalEmbedder
) -> AsyncIterator[MemoryService]:
    service = MemoryService(
        tmp_path / "memory.db", tmp_path / "workspace", _Borrowed(local_embedder)
    )
    await service.start()
    yield service
    await service.stop()


@pytest.fixture
async def torch_memory(
    tmp_path: Path, torch_embedder: LocalEmbedder
) -> AsyncIterator[MemoryService]:
    service = MemoryService(
        tmp_path / "memory.db", tmp_path / "workspace", _Borrowed(torch_embedder)
    )
    await service.start()
    yield service
    await service.stop()
