"""The backoff schedule (exact delays with an injected random source) and the retry helper."""

from __future__ import annotations

import asyncio
import random

import pytest

from nexflow.backoff import Backoff, pause, retry

# -- the schedule -----------------------------------------------------------------------


def test_delays_grow_by_the_factor_up_to_the_cap() -> None:
    policy = Backoff(base_s=0.5, cap_s=5.0)
    assert [policy.delay(n) for n in range(1, 7)] == [0.5, 1.0, 2.0, 4.0, 5.0, 5.0]
    tripled = Backoff(base_s=1.0, cap_s=100.0, factor=3.0)
    assert [tripled.delay(n) for n in range(1, 6)] == [1.0, 3.0, 9.0, 27.0, 81.0]


def test_no_jitter_draws_no_random_number() -> None:
    def never() -> float:
        raise AssertionError("a policy without jitter must not draw")

    assert Backoff(1.0, 60.0).delay(3, rand=never) == 4.0


def test_jitter_scales_within_its_bounds() -> None:
    policy = Backoff(base_s=1.0, cap_s=8.0, jitter=0.5)
    assert policy.delay(3, rand=lambda: 0.0) == 2.0  # half of 4 s at the low end
    assert policy.delay(3, rand=lambda: 0.5) == 3.0
    assert policy.delay(3, rand=lambda: 0.999) == pytest.approx(3.998)
    assert policy.delay(9, rand=lambda: 0.0) == 4.0  # jitter applies to the capped delay
    draws = random.Random(7)
    seeded = [policy.delay(n, rand=draws.random) for n in range(1, 5)]
    again = random.Random(7)
    expected = [min(8.0, 2.0 ** (n - 1)) * (0.5 + 0.5 * again.random()) for n in range(1, 5)]
    assert seeded == expected
    full = Backoff(base_s=1.0, cap_s=8.0, jitter=1.0)
    assert all(0.0 <= full.delay(4, rand=draws.random) < 8.0 for _ in range(100))


def test_retry_after_replaces_the_schedule() -> None:
    policy = Backoff(base_s=1.0, cap_s=60.0, jitter=0.5)
    assert policy.delay(6, retry_after=0.25) == 0.25  # even below the computed 32 s
    assert policy.delay(1, retry_after=120.0) == 120.0  # and above the cap
    assert policy.delay(3, retry_after=0.0, rand=lambda: 1.0) == 4.0  # "0" is not a wait
    assert policy.delay(3, retry_after=None, rand=lambda: 1.0) == 4.0


def test_thousands_of_failures_stay_at_the_cap() -> None:
    assert Backoff(1.0, 60.0).delay(5000) == 60.0


def test_max_attempts_and_deadline() -> None:
    three = Backoff(1.0, 8.0, max_attempts=3)
    assert [three.gives_up(n) for n in (1, 2, 3, 4)] == [False, False, True, True]
    timed = Backoff(1.0, 8.0, deadline_s=10.0)
    assert not timed.gives_up(50, elapsed_s=9.99)
    assert timed.gives_up(2, elapsed_s=10.0)
    assert not Backoff(1.0, 8.0).gives_up(10_000, elapsed_s=1e9)


@pytest.mark.parametrize(
    "bad",
    [
        {"base_s": -1.0, "cap_s": 1.0},
        {"base_s": 1.0, "cap_s": 1.0, "factor": 0.5},
        {"base_s": 1.0, "cap_s": 1.0, "jitter": 1.5},
        {"base_s": 1.0, "cap_s": 1.0, "max_attempts": 0},
    ],
)
def test_nonsense_policies_are_refused(bad: dict[str, float]) -> None:
    with pytest.raises(ValueError):
        Backoff(**bad)  # type: ignore[arg-type]


# -- the retry helper -------------------------------------------------------------------


class Transient(Exception):
    pass


class Permanent(Exception):
    pass


class Script:
    """Raises the scripted errors in turn, then returns ``"ok"``."""

    def __init__(self, *errors: Exception) -> None:
        self.errors = list(errors)
        self.calls = 0

    async def __call__(self) -> str:
        self.calls += 1
        if self.errors:
            raise self.errors.pop(0)
        return "ok"


class Sleeps:
    def __init__(self) -> None:
        self.waits: list[float] = []

    async def __call__(self, seconds: float) -> None:
        self.waits.append(seconds)


async def test_retries_selected_errors_on_the_schedule() -> None:
    call, sleeps = Script(Transient(), Transient()), Sleeps()
    told: list[tuple[str, int, float]] = []
    result = await retry(
        call,
        Backoff(1.0, 8.0, jitter=0.5, max_attempts=5),
        on=Transient,
        before_sleep=lambda exc, n, wait: told.append((type(exc).__name__, n, wait)),
        sleep=sleeps,
        rand=lambda: 0.5,
    )
    assert result == "ok" and call.calls == 3
    assert sleeps.waits == [0.75, 1.5]
    assert told == [("Transient", 1, 0.75), ("Transient", 2, 1.5)]


async def test_other_errors_and_refused_ones_are_raised_at_once() -> None:
    policy, sleeps = Backoff(1.0, 8.0, max_attempts=5), Sleeps()
    call = Script(Permanent("no"))
    with pytest.raises(Permanent):
        await retry(call, policy, on=Transient, sleep=sleeps)
    assert call.calls == 1
    flagged = Script(Transient("final"))
    with pytest.raises(Transient, match="final"):
        await retry(flagged, policy, on=Transient, when=lambda e: str(e) != "final", sleep=sleeps)
    assert flagged.calls == 1 and sleeps.waits == []


async def test_gives_up_with_the_last_error() -> None:
    call, sleeps = Script(Transient("1"), Transient("2"), Transient("3")), Sleeps()
    with pytest.raises(Transient, match=r"^3$"):
        await retry(call, Backoff(1.0, 8.0, max_attempts=3), on=(Transient,), sleep=sleeps)
    assert call.calls == 3 and sleeps.waits == [1.0, 2.0]


async def test_gives_up_at_the_deadline() -> None:
    now = [0.0]
    sleeps = Sleeps()

    async def slow_failure() -> str:
        now[0] += 4.0
        raise Transient(f"at {now[0]:.0f}")

    with pytest.raises(Transient, match="at 12"):
        await retry(
            slow_failure,
            Backoff(1.0, 8.0, deadline_s=10.0),
            on=Transient,
            sleep=sleeps,
            clock=lambda: now[0],
        )
    assert sleeps.waits == [1.0, 2.0]


async def test_cancellation_is_not_swallowed() -> None:
    started = asyncio.Event()

    async def hangs() -> str:
        started.set()
        await asyncio.sleep(3600)
        return "never"

    async def cancelled(task: asyncio.Task[str]) -> bool:
        task.cancel()
        await asyncio.wait({task}, timeout=2.0)  # a swallowed cancel would go on retrying
        return task.cancelled()

    calling = asyncio.create_task(retry(hangs, Backoff(0.0, 0.0), on=Exception))
    await started.wait()
    assert await cancelled(calling)
    sleeping = asyncio.create_task(
        retry(Script(Transient(), Transient()), Backoff(3600.0, 3600.0), on=Exception)
    )
    await asyncio.sleep(0.01)  # the first call failed; it sleeps an hour
    assert await cancelled(sleeping)


async def test_pause_ends_early_when_stopped() -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    started = loop.time()
    await pause(0.05, stop)
    assert loop.time() - started >= 0.04
    stop.set()
    started = loop.time()
    await pause(3600.0, stop)
    assert loop.time() - started < 1.0
