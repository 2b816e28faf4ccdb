"""The gateway's rate limit and model breakers, shared by replicas: two gateways' worth of
``RateLimit`` middlewares and ``ModelResolver`` breakers, each built from its own
config by :func:`nexflow.scale.wiring.shared_limits`, on one Postgres and on one Redis."""

import uuid
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import pytest

from nexflow.bus import InboundEvent, RateLimited
from nexflow.bus.middleware import Accepted, PublishContext, RateLimit, build_chain
from nexflow.config.model import (
    BreakerConfig,
    LLMConfig,
    ModelProfile,
    NexflowConfig,
    RateLimitConfig,
    RetryConfig,
)
from nexflow.llm import LLMRequest
from nexflow.llm.litellm_client import LiteLLMLoader
from nexflow.llm.resolver import ModelResolver
from nexflow.llm.router import CircuitBreaker
from nexflow.scale.wiring import SharedLimits, shared_limits
from nexflow.testing.fake_llm import FakeLLMServer, Reply

RATE = RateLimitConfig(per_minute=1, burst=2)
HELLO = LLMRequest(messages=[{"role": "user", "content": "hello"}])


async def final(event: InboundEvent, ctx: PublishContext) -> Accepted:
    return Accepted(1, "s", event)


def message(sender: str) -> InboundEvent:
    return InboundEvent(channel="telegram", chat_id="c", sender_id=sender, message="hi")


@pytest.fixture(params=["postgres", "redis"])
def replica_config(request: pytest.FixtureRequest, tmp_path: Path) -> Callable[..., NexflowConfig]:
    """Configs of replicas of one deployment: one Postgres; Redis too for ``redis``."""
    pg_url = request.getfixturevalue("pg_url")
    redis_url = request.getfixturevalue("redis_url") if request.param == "redis" else None

    def make(name: str, **sections: Any) -> NexflowConfig:
        return NexflowConfig(
            home=tmp_path / name,
            storage={"url": pg_url},
            redis={"url": redis_url},
            **sections,
        )

    return make


@pytest.fixture
async def opened() -> AsyncIterator[Callable[[NexflowConfig], Any]]:
    made: list[SharedLimits] = []

    async def open_for(config: NexflowConfig) -> SharedLimits:
        limits = shared_limits(config)
        assert limits is not None
        await limits.open()
        made.append(limits)
        return limits

    yield open_for
    for limits in made:
        await limits.close()


def test_one_gateway_on_sqlite_keeps_its_limits_in_memory(tmp_path: Path) -> None:
    assert shared_limits(NexflowConfig(home=tmp_path)) is None
    redis_only = NexflowConfig(home=tmp_path, redis={"url": "redis://127.0.0.1:6379/0"})
    assert shared_limits(redis_only) is None  # Redis without Postgres: still one gateway


async def test_a_users_rate_limit_is_shared_by_two_replicas(
    replica_config: Callable[..., NexflowConfig], opened: Callable[[NexflowConfig], Any]
) -> None:
    chains = []
    for name in ("a", "b"):
        config = replica_config(name, rate_limit=RATE)
        limits = await opened(config)
        assert limits.backend == ("redis" if config.redis.url else "postgres")
        shared = limits.rate_limiter(config.rate_limit)
        chains.append(build_chain([RateLimit(config.rate_limit, shared=shared)], final))
    a, b = chains
    user = f"u-{uuid.uuid4().hex[:8]}"  # the Redis server lives for the whole run
    await a(message(user), PublishContext())
    await b(message(user), PublishContext())  # the burst of 2, one message on each replica
    for chain in (a, b):
        with pytest.raises(RateLimited) as info:
            await chain(message(user), PublishContext())
        assert 0 < info.value.retry_after_s <= 60
    await b(message(f"{user}-other"), PublishContext())  # another user, another bucket
    await a(message(user), PublishContext(role="owner"))  # the owner is never limited


async def test_a_breaker_opened_by_one_replica_is_open_for_the_other(
    replica_config: Callable[..., NexflowConfig], opened: Callable[[NexflowConfig], Any]
) -> None:
    strong, cheap = FakeLLMServer(), FakeLLMServer()
    await strong.start()
    await cheap.start()
    tag = uuid.uuid4().hex[:8]  # breaker keys are profile names: this test's own
    first, second = f"strong{tag}", f"cheap{tag}"

    def profile(model: str, server: FakeLLMServer) -> ModelProfile:
        return ModelProfile(model=model, api_base=server.base_url, api_key="k", client="openai")

    llm = LLMConfig(
        models={first: profile("openai/strong", strong), second: profile("openai/cheap", cheap)},
        routes={"plan": first},
        fallbacks={first: [second]},
        retry=RetryConfig(attempts=1, initial_backoff_s=0.01),
        breaker=BreakerConfig(failures=1, cooldown_s=60),
        stream=False,
    )
    replicas, breakers = [], []
    for name in ("a", "b"):
        config = replica_config(name, llm=llm)
        breakers.append((await opened(config)).breaker(llm.breaker))
        replicas.append(ModelResolver(config.llm, LiteLLMLoader(), breaker=breakers[-1]))
    a, b = replicas
    try:
        assert a.breaker is breakers[0] and not isinstance(a.breaker, CircuitBreaker)
        strong.push(Reply(status=500))
        answer = await (await a.client_for("plan")).complete(HELLO)  # strong fails: opens
        assert answer.fallback_from == "openai/strong"
        assert await breakers[1].state(first) == "open"
        answer = await (await b.client_for("plan")).complete(HELLO)
        assert (answer.model, answer.fallback_from) == ("openai/cheap", "openai/strong")
        assert (len(strong.requests), len(cheap.requests)) == (1, 2)  # b skipped strong
    finally:
        for models in replicas:
            await models.close()
        await strong.stop()
        await cheap.stop()


async def test_an_unreachable_backend_falls_back_to_this_replicas_own_limits(
    tmp_path: Path, pg_url: str
) -> None:
    server = FakeLLMServer()
    await server.start()
    llm = LLMConfig(
        models={"only": ModelProfile(model="openai/m", api_base=server.base_url, api_key="k")},
        retry=RetryConfig(attempts=1),
        stream=False,
    )
    config = NexflowConfig(
        home=tmp_path, storage={"url": pg_url}, redis={"url": "redis://127.0.0.1:1/0"}, llm=llm
    )
    limits = shared_limits(config)
    assert limits is not None
    await limits.open()
    models = ModelResolver(llm, LiteLLMLoader(), breaker=limits.breaker(llm.breaker))
    try:
        chain = build_chain([RateLimit(RATE, shared=limits.rate_limiter(RATE))], final)
        await chain(message("u"), PublishContext())
        await chain(message("u"), PublishContext())
        with pytest.raises(RateLimited):  # the local bucket stands in
            await chain(message("u"), PublishContext())
        answer = await (await models.client_for()).complete(HELLO)  # the call goes ahead
        assert answer.content == "Echo: hello"
    finally:
        await models.close()
        await limits.close()
        await server.stop()
