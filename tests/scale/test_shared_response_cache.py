"""The LLM response cache shared by replicas: two replicas' worth of ``ModelResolver``s,
each built from its own config as the composition root builds them
(:func:`nexflow.scale.wiring.shared_limits`), on one real Postgres and on one real Redis
in front of fake providers that count requests."""

import asyncio
import uuid
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psycopg
import pytest
from structlog.testing import capture_logs

from nexflow.config.model import NexflowConfig
from nexflow.llm import LLMRequest, LLMResponse, ToolCall
from nexflow.llm.cache import CacheBackend, MemoryResponseCache, decode, encode
from nexflow.llm.client import Usage
from nexflow.llm.errors import LLMError
from nexflow.llm.litellm_client import LiteLLMLoader
from nexflow.llm.resolver import ModelResolver
from nexflow.scale.response_cache import PostgresResponseCache, RedisResponseCache
from nexflow.scale.wiring import SharedLimits, shared_limits
from nexflow.testing.fake_llm import FakeLLMServer, Reply
from nexflow.testing.postgres import fresh_schema, start_postgres
from nexflow.testing.redis import start_redis


def ask(text: str = "summarize: the sky is blue") -> LLMRequest:
    """A request of this test's own (the Redis server lives for the whole run)."""
    return LLMRequest([{"role": "user", "content": f"{text} [{uuid.uuid4().hex}]"}])


@dataclass
class Replica:
    models: ModelResolver
    cache: CacheBackend
    limits: SharedLimits | None

    async def complete(self, request: LLMRequest, **kw: Any) -> LLMResponse:
        return await (await self.models.client_for("summarize")).complete(request, **kw)


Build = Callable[..., Any]


def llm_section(main: FakeLLMServer, backup: FakeLLMServer | None, **cache: Any) -> dict[str, Any]:
    def profile(model: str, server: FakeLLMServer) -> dict[str, Any]:
        return {"model": model, "api_base": server.base_url, "api_key": "k", "client": "openai"}

    tag = uuid.uuid4().hex[:8]  # breaker keys are profile names: this test's own
    models = {f"cheap{tag}": profile("openai/cheap", main)}
    if backup is not None:
        models[f"backup{tag}"] = profile("openai/backup", backup)
    return {
        "models": models,
        "routes": {"summarize": f"cheap{tag}"},
        "fallbacks": {f"cheap{tag}": [f"backup{tag}"]} if backup is not None else {},
        "cache": {"routes": ["summarize"], **cache},
        "retry": {"attempts": 1},
        "breaker": {"failures": 100},
    }


@pytest.fixture
async def replicas(
    request: pytest.FixtureRequest, tmp_path: Path
) -> AsyncIterator[Callable[..., Any]]:
    """Builds replicas of one deployment: ``memory`` (SQLite: each its own cache),
    ``postgres`` (one database) or ``redis`` (one database and one Redis)."""
    backend = getattr(request, "param", "postgres")
    pg_url = request.getfixturevalue("pg_url") if backend != "memory" else None
    redis_url = request.getfixturevalue("redis_url") if backend == "redis" else None
    made: list[Replica] = []

    async def build(
        name: str, llm: dict[str, Any], redis: str | None = None, pg: str | None = None
    ) -> Replica:
        storage = {"url": pg or pg_url} if pg or pg_url else {}
        config = NexflowConfig(
            home=tmp_path / name, storage=storage, redis={"url": redis or redis_url}, llm=llm
        )
        limits = shared_limits(config)  # as nexflow.app.build_application does
        cache = limits.response_cache(config.llm.cache) if limits else None
        models = ModelResolver(config.llm, LiteLLMLoader(), cache=cache)
        if limits is not None:
            await limits.open()
        made.append(Replica(models, models.cache, limits))
        return made[-1]

    yield build
    for replica in made:
        await replica.models.close()
        if replica.limits is not None:
            await replica.limits.close()


@pytest.fixture
async def main_llm() -> AsyncIterator[FakeLLMServer]:
    server = FakeLLMServer()
    await server.start()
    yield server
    await server.stop()


shared = pytest.mark.parametrize("replicas", ["postgres", "redis"], indirect=True)
every = pytest.mark.parametrize("replicas", ["memory", "postgres", "redis"], indirect=True)


def test_one_gateway_keeps_its_cache_in_memory(tmp_path: Path) -> None:
    assert shared_limits(NexflowConfig(home=tmp_path)) is None
    models = ModelResolver(NexflowConfig(home=tmp_path).llm, LiteLLMLoader())
    assert isinstance(models.cache, MemoryResponseCache)


@shared
async def test_a_reply_cached_by_one_replica_is_a_hit_on_the_other(
    replicas: Build, main_llm: FakeLLMServer
) -> None:
    llm = llm_section(main_llm, None)
    a, b = await replicas("a", llm), await replicas("b", llm)
    assert isinstance(a.cache, PostgresResponseCache | RedisResponseCache)
    assert a.cache is not b.cache
    q = ask()
    first = await a.complete(q)
    second = await b.complete(q)  # another replica: no provider call
    third = await a.complete(q)
    other = await b.complete(ask("something else"))
    assert len(main_llm.requests) == 2
    assert not first.cached and first.usage.prompt_tokens > 0
    assert second.cached and third.cached and not other.cached
    assert (second.content, second.model) == (first.content, first.model)
    assert second.usage == Usage() and second.latency_s == 0.0
    assert (b.cache.hits, b.cache.misses) == (1, 1)  # this process's counters


@shared
async def test_a_response_survives_the_store_field_for_field(
    replicas: Build, main_llm: FakeLLMServer
) -> None:
    llm = llm_section(main_llm, None)
    a, b = await replicas("a", llm), await replicas("b", llm)
    stored = LLMResponse(
        content="Привет, «мир» \u2603",
        model="openai/cheap",
        usage=Usage(prompt_tokens=12, completion_tokens=7, cost_usd=0.000123),
        latency_s=1.25,
    )
    key = uuid.uuid4().hex
    assert await a.cache.put(key, stored)
    hit = await b.cache.get(key)
    assert hit == LLMResponse(content=stored.content, model=stored.model, cached=True)
    # What the store never keeps round-trips too: the format is the whole response.
    full = LLMResponse(
        "x", "m", (ToolCall("c1", "f", '{"a": 1}'),), Usage(1, 2, 0.5), 0.3, "strong", False
    )
    assert decode(encode(full)) == full


@shared
async def test_entries_expire_after_the_ttl_on_every_replica(
    replicas: Build, main_llm: FakeLLMServer
) -> None:
    llm = llm_section(main_llm, None, ttl_s=1.0)
    a, b = await replicas("a", llm), await replicas("b", llm)
    q = ask()
    await a.complete(q)
    assert (await b.complete(q)).cached
    await asyncio.sleep(1.1)
    again = await b.complete(q)
    assert not again.cached and len(main_llm.requests) == 2
    assert (await a.complete(q)).cached  # b's fresh answer, stored again
    if isinstance(a.cache, PostgresResponseCache):
        await asyncio.sleep(1.1)
        assert await a.cache.prune() == 1  # the expired row is dropped, not just skipped


async def test_postgres_keeps_the_newest_max_entries(
    replicas: Build, main_llm: FakeLLMServer
) -> None:
    llm = llm_section(main_llm, None, max_entries=2)
    a, b = await replicas("a", llm), await replicas("b", llm)
    keys = [uuid.uuid4().hex for _ in range(4)]
    for key in keys:  # a prune every max_entries puts: after the 2nd and the 4th
        assert await a.cache.put(key, LLMResponse(content=key, model="m"))
    assert [await b.cache.get(k) is not None for k in keys] == [False, False, True, True]
    assert isinstance(a.cache, PostgresResponseCache) and await a.cache.prune() == 0


@every
async def test_what_is_never_cached_on_any_backend(
    replicas: Build, providers: tuple[FakeLLMServer, FakeLLMServer]
) -> None:
    main, backup = providers
    llm = llm_section(main, backup)
    a, b = await replicas("a", llm), await replicas("b", llm)
    deltas: list[str] = []

    async def sink(text: str) -> None:
        deltas.append(text)

    q = ask("what time is it")
    tools = LLMRequest(q.messages, [{"type": "function", "function": {"name": "get_time"}}])
    main.push(*[Reply(tool_calls=(("get_time", {}),))] * 3)
    assert all([(await r.complete(tools)).tool_calls for r in (a, a, b)])
    assert len(main.requests) == 3

    q = ask()
    main.push(Reply(status=503))
    assert (await a.complete(q)).fallback_from == "openai/cheap"  # the backup answered
    main.push(Reply(text=""), Reply(text=""))
    assert (await a.complete(q)).content == "" and (await b.complete(q)).content == ""
    main.push(Reply(status=503))
    backup.push(Reply(status=503))
    with pytest.raises(LLMError):
        await a.complete(q)
    await a.complete(q, on_delta=sink)  # streamed: straight to the provider, not stored
    await a.complete(q, on_delta=sink)
    assert "".join(deltas).count("Echo:") == 2
    assert (len(main.requests), len(backup.requests)) == (3 + 6, 2)
    answered = await b.complete(q)  # nothing above was stored: the provider answers
    assert not answered.cached and len(main.requests) == 10
    assert (await a.complete(q)).cached == (a.limits is not None)  # memory: a's own LRU


async def test_postgres_down_is_a_miss_logged_once_and_the_provider_answers(
    replicas: Build, main_llm: FakeLLMServer
) -> None:
    server = start_postgres()  # its own: the test cuts every connection to its database
    assert server is not None
    try:
        llm = llm_section(main_llm, None)
        pg_url = fresh_schema(server.url)
        a = await replicas("a", llm, pg=pg_url)
        b = await replicas("b", llm, pg=pg_url)
        q = ask()
        await a.complete(q)
        assert (await b.complete(q)).cached
        # The replicas' database refuses connections and drops theirs: down, to them.
        admin_url = server.url.rsplit("/", 1)[0] + "/template1"
        with psycopg.connect(admin_url, autocommit=True) as admin:
            admin.execute("ALTER DATABASE postgres ALLOW_CONNECTIONS false")
            admin.execute(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = 'postgres'"
            )
            with capture_logs() as logs:
                answers = [await b.complete(q) for _ in range(3)]
                await b.complete(ask("another"))
            admin.execute("ALTER DATABASE postgres ALLOW_CONNECTIONS true")
        with capture_logs() as after:
            assert (await b.complete(q)).cached  # up again: a's row is still there
    finally:
        server.stop()
    assert [r.content.startswith("Echo:") and not r.cached for r in answers] == [True] * 3
    assert len(main_llm.requests) == 1 + 4
    events = [e["event"] for e in logs]
    assert events.count("response_cache_unavailable") == 1
    assert "response_cache_recovered" in [e["event"] for e in after]


async def test_redis_down_is_a_miss_logged_once_and_the_provider_answers(
    replicas: Build, main_llm: FakeLLMServer
) -> None:
    server = start_redis()
    assert server is not None
    try:
        llm = llm_section(main_llm, None)
        a = await replicas("a", llm, redis=server.url)
        b = await replicas("b", llm, redis=server.url)
        q = ask()
        await a.complete(q)
        assert (await b.complete(q)).cached
        server.stop()
        with capture_logs() as logs:
            answers = [await r.complete(q) for r in (a, b, b)]
    finally:
        server.stop()
    assert [r.content.startswith("Echo:") and not r.cached for r in answers] == [True] * 3
    assert len(main_llm.requests) == 1 + 3
    events = [e["event"] for e in logs]
    assert events.count("response_cache_unavailable") == 2  # once per replica's cache
