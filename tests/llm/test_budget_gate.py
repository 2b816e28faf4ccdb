"""The budget gate: reserve before a model call, settle after it, on the real usage table
(SQLite, then Postgres), the real resolver and OpenAI-compatible client against the fake
provider (which counts every request that reaches it)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from nexflow.config.model import BudgetsConfig, LLMConfig
from nexflow.llm import LLMRequest
from nexflow.llm.budget import Budgets
from nexflow.llm.errors import BudgetExhausted, LLMError, ProviderRejected
from nexflow.llm.gate import BudgetGate, completion_ceiling, prompt_tokens
from nexflow.llm.litellm_client import LiteLLMLoader
from nexflow.llm.resolver import ModelResolver
from nexflow.storage.repo_usage import UsageRow
from nexflow.storage.sql_storage import SQLStorage
from nexflow.testing.fake_llm import FakeLLMServer, Reply

NOW = datetime(2026, 11, 22, 10, 0, tzinfo=UTC)
Q = LLMRequest([{"role": "user", "content": "hello"}])


def llm_config(server: FakeLLMServer, **profile: Any) -> LLMConfig:
    model = {"model": "openai/fake", "api_base": server.base_url, "api_key": "k"}
    return LLMConfig.model_validate(
        {
            "models": {"main": {**model, "client": "openai", **profile}},
            "retry": {"attempts": 1},
            "stream": False,
        }
    )


@dataclass
class Clock:
    now: datetime = NOW

    def __call__(self) -> datetime:
        return self.now


@dataclass
class Rig:
    gate: BudgetGate
    budgets: Budgets
    storage: SQLStorage
    llm: FakeLLMServer
    clock: Clock

    async def ask(self, user: str = "ana", scope: str = "user", request: LLMRequest = Q) -> Any:
        client = await self.gate.client_for("execute", user_id=user, scope=scope, purpose="test")
        return await client.complete(request)

    async def used(self, user: str = "ana", scope: str = "user") -> int:
        return await self.storage.used_tokens(user, scope, "")


MakeRig = Callable[..., Rig]


def slow(llm: FakeLLMServer, reply: Reply) -> asyncio.Event:
    """Answer the next request with ``reply`` (delayed); the event is set when it arrives."""
    arrived = asyncio.Event()

    def brain(_: dict[str, Any]) -> Reply:
        arrived.set()
        return reply

    llm.brain = brain
    return arrived


@pytest.fixture
async def rig(storage: SQLStorage, fake_llm: FakeLLMServer) -> AsyncIterator[MakeRig]:
    """``rig(**budgets)`` → a gate over a resolver for ``fake_llm`` (profile options via
    ``profile={...}``)."""
    resolvers: list[ModelResolver] = []

    def make(profile: dict[str, Any] | None = None, **budgets: Any) -> Rig:
        llm = llm_config(fake_llm, **(profile or {}))
        resolver = ModelResolver(llm, LiteLLMLoader())
        resolvers.append(resolver)
        clock = Clock()
        b = Budgets(BudgetsConfig(**budgets), storage, clock)
        return Rig(BudgetGate(resolver, b, llm), b, storage, fake_llm, clock)

    yield make
    for resolver in resolvers:
        await resolver.close()


async def test_a_call_is_reserved_while_it_runs_and_settled_with_its_usage(rig: MakeRig) -> None:
    r = rig(per_user_daily_tokens=100_000)
    arrived = slow(r.llm, Reply(text="hi there", delay_s=0.3))
    call = asyncio.create_task(r.ask())
    await asyncio.wait_for(arrived.wait(), 5)
    # In flight: the worst case is held (prompt estimate + default_reserve_tokens).
    assert await r.storage.reserved_tokens("ana", "user") == prompt_tokens(Q) + 1024
    response = await call
    assert await r.storage.reserved_tokens("ana", "user") == 0
    usage = response.usage
    assert await r.used() == usage.prompt_tokens + usage.completion_tokens > 0
    [row] = await r.budgets.today_by_model()  # the statistics read the settled row
    assert (row.model, row.calls, row.tokens_in) == ("openai/fake", 1, usage.prompt_tokens)


async def test_a_failed_call_releases_its_reservation(rig: MakeRig) -> None:
    r = rig(per_user_daily_tokens=100_000)
    r.llm.push(Reply(status=400))
    with pytest.raises(ProviderRejected):
        await r.ask()
    assert len(r.llm.requests) == 1
    assert await r.storage.reserved_tokens("ana", "user") == 0
    assert await r.used() == 0


async def test_a_user_at_the_hard_stop_gets_no_request(rig: MakeRig) -> None:
    r = rig(per_user_daily_tokens=10)
    await r.ask()  # admitted under the limit; it goes past it by less than its reservation
    used = await r.used()
    assert 10 < used <= 10 + prompt_tokens(Q) + 1024
    with pytest.raises(BudgetExhausted) as refused:
        await r.ask()
    exc = refused.value
    assert isinstance(exc, LLMError)
    assert (exc.period, exc.limit, exc.used, exc.scope) == ("daily", 10, used, "user")
    assert "daily budget of 10 tokens" in exc.message
    assert len(r.llm.requests) == 1  # the refused call never reached the provider
    assert await r.storage.reserved_tokens("ana", "user") == 0
    await r.ask(user="bo")  # budgets are per user


async def test_the_monthly_limit_counts_every_day(rig: MakeRig) -> None:
    r = rig(per_user_daily_tokens=100_000, per_user_monthly_tokens=10)
    await r.ask()
    r.clock.now = NOW + timedelta(days=1)
    with pytest.raises(BudgetExhausted) as refused:
        await r.ask()
    assert refused.value.period == "monthly"
    r.clock.now = datetime(2026, 12, 1, tzinfo=UTC)
    await r.ask()
    assert len(r.llm.requests) == 2


async def test_concurrent_calls_at_the_edge_never_pass_the_limit_by_more_than_one_reservation(
    rig: MakeRig,
) -> None:
    r = rig(per_user_daily_tokens=3_000)
    long = "word " * 800  # ~1,000 completion tokens: each call uses about its reservation
    r.llm.brain = lambda _: Reply(text=long, delay_s=0.2)
    reservation = prompt_tokens(Q) + 1024
    results = await asyncio.gather(*(r.ask() for _ in range(12)), return_exceptions=True)
    refused = [e for e in results if isinstance(e, BudgetExhausted)]
    answered = [e for e in results if not isinstance(e, BaseException)]
    assert len(answered) + len(refused) == 12
    assert len(r.llm.requests) == len(answered) == 3  # 0, 1×, 2× reserved < 3,000 ≤ 3×
    used = await r.used()
    assert 3_000 < used <= 3_000 + reservation
    assert await r.storage.reserved_tokens("ana", "user") == 0
    with pytest.raises(BudgetExhausted):
        await r.ask()
    assert len(r.llm.requests) == 3


async def test_a_profiles_max_tokens_is_the_completion_share(rig: MakeRig) -> None:
    r = rig(profile={"max_tokens": 64}, per_user_daily_tokens=100_000)
    arrived = slow(r.llm, Reply(text="ok", delay_s=0.3))
    call = asyncio.create_task(r.ask())
    await asyncio.wait_for(arrived.wait(), 5)
    assert await r.storage.reserved_tokens("ana", "user") == prompt_tokens(Q) + 64
    await call


def test_the_completion_ceiling_covers_every_profile_that_may_answer() -> None:
    llm = LLMConfig.model_validate(
        {
            "models": {
                "strong": {"model": "openai/s", "max_tokens": 4096},
                "cheap": {"model": "openai/c", "max_tokens": 256},
                "small": {"model": "openai/x"},
            },
            "routes": {"plan": "strong", "execute": "cheap", "summarize": "small"},
            "fallbacks": {"cheap": ["strong"]},
        }
    )
    assert completion_ceiling(llm, "plan", 1024) == 4096
    assert completion_ceiling(llm, "execute", 1024) == 4096  # its fallback may answer
    assert completion_ceiling(llm, "summarize", 1024) == 1024  # no max_tokens: the default
    assert completion_ceiling(None, "plan", 1024) == 1024


async def test_reservations_a_crash_leaves_behind_do_not_block(
    tmp_path: Path, storage: SQLStorage
) -> None:
    config = BudgetsConfig(per_user_daily_tokens=1_000)
    budgets = Budgets(config, storage, lambda: NOW)
    await budgets.reserve("ana", "user", 1_500)  # in flight, never settled: then a crash
    with pytest.raises(BudgetExhausted):
        await budgets.reserve("ana", "user", 10)
    await storage.close()
    reopened = SQLStorage(tmp_path / "nexflow.db")
    await reopened.open()
    try:
        again = await Budgets(config, reopened, lambda: NOW).reserve("ana", "user", 10)
        assert again.id is not None
        assert await reopened.reserved_tokens("ana", "user") == 10
    finally:
        await reopened.close()


async def test_a_leaked_reservation_expires(storage: SQLStorage) -> None:
    clock = Clock()
    budgets = Budgets(BudgetsConfig(per_user_daily_tokens=1_000), storage, clock)
    await budgets.reserve("ana", "user", 1_500)  # e.g. cancelled while it settled
    clock.now = NOW + timedelta(minutes=9)
    with pytest.raises(BudgetExhausted):
        await budgets.reserve("ana", "user", 10)
    clock.now = NOW + timedelta(minutes=11)
    leaked_gone = await budgets.reserve("ana", "user", 10)
    await budgets.settle(leaked_gone, UsageRow("m", 1, 5, 5))
    assert await storage.reserved_tokens("ana", "user") == 0
    assert await storage.used_tokens("ana", "user", "") == 10


async def test_background_work_stops_at_the_users_hard_stop(rig: MakeRig) -> None:
    r = rig(per_user_daily_tokens=10, background_daily_tokens=1_000_000)
    await r.ask()
    with pytest.raises(BudgetExhausted) as refused:
        await r.ask(scope="background")
    assert (refused.value.period, refused.value.scope) == ("daily", "background")
    assert len(r.llm.requests) == 1
    assert await r.used(scope="background") == 0


async def test_background_calls_must_fit_their_own_budget(rig: MakeRig) -> None:
    reservation = prompt_tokens(Q) + 1024
    r = rig(background_daily_tokens=reservation)  # room for exactly one reservation
    first = await r.ask(scope="background")
    with pytest.raises(BudgetExhausted) as refused:
        await r.ask(scope="background")
    exc = refused.value
    assert (exc.period, exc.limit) == ("background", reservation)
    assert "background token budget" in exc.message
    assert len(r.llm.requests) == 1
    u = first.usage
    assert await r.used(scope="background") == u.prompt_tokens + u.completion_tokens
    assert await r.used(scope="user") == 0  # background work is not the user's own budget
    await r.ask()  # and the user's turns are not stopped by it


async def test_without_limits_nothing_is_reserved_but_usage_is_recorded(rig: MakeRig) -> None:
    r = rig()
    reservation = await r.budgets.reserve("ana", "user", 500)
    assert reservation.id is None  # no database round trip before the call
    await r.ask()
    await r.ask(scope="background")
    assert await r.used() > 0 and await r.used(scope="background") > 0


async def test_an_unknown_scope_is_a_programming_error(rig: MakeRig) -> None:
    with pytest.raises(ValueError, match="scope"):
        await rig().gate.client_for("execute", user_id="ana", scope="cron")
