from collections.abc import Iterator

import pytest

from nexflow.testing.redis import RedisServer, start_redis


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
