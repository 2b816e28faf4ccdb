import asyncio
from collections.abc import AsyncIterator, Callable, Iterator, Sequence
from pathlib import Path

import pytest

from nexflow.memory import MemoryService
from nexflow.memory.embedder import OpenAICompatEmbedder
from nexflow.memory.local_embedder import DEFAULT_MODEL, LocalEmbedder, local_model_problem
from nexflow.memory.torch_embedder import TORCH_MODEL
from nexflow.testing.fake_llm import FakeLLMServer
from nexflow.testing.postgres import fresh_schema

IndexUrl = Callable[[], str | None]


@pytest.fixture(params=["sqlite", "postgresql"])
def new_index_url(request: pytest.FixtureRequest) -> IndexUrl:
    """Where a test's memory index lives: the SQLite file (None), then Postgres (a fresh
    schema on the run's server for every call)."""
    if request.param == "sqlite":
        return lambda: None
    server_url = request.getfixturevalue("pg_server").url
    return lambda: fresh_schema(server_url)


@pytest.fixture
async def keyword_memory(tmp_path: Path, new_index_url: IndexUrl) -> AsyncIterator[MemoryService]:
    service = MemoryService(
        tmp_path / "memory.db", tmp_path / "workspace", None, index_url=new_index_url()
    )
    await service.start()
    yield service
    await service.stop()


@pytest.fixture
async def hybrid_memory(
    tmp_path: Path, fake_llm: FakeLLMServer, new_index_url: IndexUrl
) -> AsyncIterator[MemoryService]:
    embedder = OpenAICompatEmbedder(fake_llm.base_url, "openai/fake-embedding", "test-key")
    service = MemoryService(
        tmp_path / "memory.db", tmp_path / "workspace", embedder, index_url=new_index_url()
    )
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
    tmp_path: Path, local_embedder: LocalEmbedder, new_index_url: IndexUrl
) -> AsyncIterator[MemoryService]:
    service = MemoryService(
        tmp_path / "memory.db",
        tmp_path / "workspace",
        _Borrowed(local_embedder),
        index_url=new_index_url(),
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
