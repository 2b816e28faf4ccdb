"""A Stop across replicas with turns queued in the session, as on one gateway: the turn
running now stops and the turns queued behind it run next, in order; with the session's
turns only queued (nothing running) the answer is ``stopped: false`` at once, not after
the 2 s an unanswered request waits. Two whole gateways on one Postgres."""

from __future__ import annotations

import asyncio
import json
import time
from pathlib import Path

import psycopg

from nexflow.testing.fake_llm import Reply
from nexflow.testing.harness import GatewayHarness
from nexflow.testing.waiting import wait_until

PARTIAL = "Let me look at the clock first."


def inbox(pg_url: str) -> dict[str, tuple[int, str]]:
    """message -> (inbox id, status)"""
    with psycopg.connect(pg_url) as conn:
        rows = conn.execute("SELECT id, status, payload FROM inbox ORDER BY id").fetchall()
    return {json.loads(p)["message"]: (int(i), str(s)) for i, s, p in rows}


async def pending(pg_url: str, message: str) -> bool:
    return await asyncio.to_thread(lambda: inbox(pg_url).get(message, (0, ""))[1] == "pending")


async def test_the_running_turn_stops_and_the_one_queued_behind_it_runs(
    tmp_path: Path, pg_url: str
) -> None:
    async with (
        GatewayHarness(tmp_path / "x", storage_url=pg_url) as x,
        GatewayHarness(tmp_path / "y", storage_url=pg_url) as y,
    ):
        assert x.app is not None and y.app is not None
        session = (await y.chat("hello"))["session"]
        y.llm.push(Reply(text=PARTIAL, tool_calls=(("get_time", {}),)))
        y.llm.push(Reply(text="this never arrives", delay_s=8.0))
        first = asyncio.create_task(y.chat("a long question", session))
        await wait_until(lambda: len(y.llm.requests) == 3)  # Y's slow model call runs
        second = asyncio.create_task(x.chat("and then this", session))  # queued behind it
        async with asyncio.timeout(10):
            while True:
                if await pending(pg_url, "and then this"):
                    break
                await asyncio.sleep(0.02)
        assert y.app.gateway.replicas.holds(session)

        resp = await x.http.post(f"/api/v1/sessions/{session}/stop")
        assert resp.status_code == 200
        body = resp.json()
        assert body["stopped"] is True
        assert (await asyncio.wait_for(first, 10))["error"] == "stopped"
        # As on one gateway, the queued turn is not stopped: it runs next, on Y.
        after = await asyncio.wait_for(second, 15)
        assert after["reply"] == "Echo: and then this" and "error" not in after
        assert x.llm.requests == []
        rows = inbox(pg_url)
        assert rows["a long question"] == (body["message_id"], "done")
        assert rows["and then this"][1] == "done"


async def test_a_stop_for_turns_only_queued_on_the_holder_answers_at_once(
    tmp_path: Path, pg_url: str
) -> None:
    # No sweeps during the test: a turn queued on Y waits for Y, not for X's sweeper.
    slow_sweep = {"NEXFLOW_REPLICAS__SWEEP_S": "60"}
    one_worker = {**slow_sweep, "NEXFLOW_BUS__CONCURRENCY": "1"}  # one turn at a time
    async with (
        GatewayHarness(tmp_path / "x", storage_url=pg_url, env=slow_sweep) as x,
        GatewayHarness(tmp_path / "y", storage_url=pg_url, env=one_worker) as y,
    ):
        assert x.app is not None and y.app is not None
        session = (await y.chat("hello"))["session"]
        other = (await y.chat("hi"))["session"]
        y.llm.push(Reply(text="first", delay_s=1.5))
        y.llm.push(Reply(text="other", delay_s=6.0))
        first = asyncio.create_task(y.chat("the first question", session))
        await wait_until(lambda: len(y.llm.requests) == 3)  # it runs on Y, Y holds the lease
        busy = asyncio.create_task(y.chat("a question elsewhere", other))  # Y's worker is busy
        queued = asyncio.create_task(x.chat("the second question", session))  # left to Y
        assert (await asyncio.wait_for(first, 10))["reply"] == "first"
        # Y took the second question when the first ended, but its one worker runs the
        # other session's slow turn: it is queued on Y, which holds the session's lease.
        await wait_until(lambda: len(y.llm.requests) == 4)
        assert y.app.gateway.replicas.holds(session)
        assert not y.app.gateway.running_here(session)
        assert await pending(pg_url, "the second question")

        started = time.monotonic()
        resp = await x.http.post(f"/api/v1/sessions/{session}/stop")
        took = time.monotonic() - started
        assert resp.json() == {"stopped": False, "message_id": None}
        assert took < 1.0, f"the stop waited {took:.2f} s for an answer"

        assert (await asyncio.wait_for(busy, 15))["reply"] == "other"
        assert (await asyncio.wait_for(queued, 15))[
            "reply"
        ] == "Echo: the second question"  # not stopped
        assert x.llm.requests == []
