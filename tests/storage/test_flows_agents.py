"""Flow host records (tool results, flow approvals) and agent invocations, on
SQLite and Postgres (the ``storage`` fixture runs each test on both)."""

from __future__ import annotations

import asyncio
import time

from nexflow.bus.events import TextOut
from nexflow.storage.base import ApprovalRecord, AuditRecord
from nexflow.storage.engine import PostgresEngine
from nexflow.storage.repo_agents import AgentInvocation
from nexflow.storage.repo_flows import flow_call_key
from nexflow.storage.sql_storage import SQLStorage


async def test_the_first_tool_result_wins(storage: SQLStorage) -> None:
    assert await storage.flow_result("r1:n1:0") is None
    first = await storage.save_flow_result("r1:n1:0", "r1", "ana", {"ok": True, "n": 1})
    second = await storage.save_flow_result("r1:n1:0", "r1", "ana", {"ok": True, "n": 2})
    assert first == second == {"ok": True, "n": 1}
    assert await storage.flow_result("r1:n1:0") == {"ok": True, "n": 1}


def approval(
    approval_id: str, user: str, run: str = "r1", expires_in: float = 60
) -> ApprovalRecord:
    return ApprovalRecord(
        id=approval_id,
        inbox_id=None,
        user_id=user,
        channel="web",
        chat_id="c1",
        session_id=None,
        title="Send?",
        detail="to bo",
        call_key=flow_call_key(run, "send"),
        expires_at=time.time() + expires_in,
    )


async def test_a_flow_approval_is_asked_once_and_answered_once(storage: SQLStorage) -> None:
    ana = await storage.create_user("Ana", "owner", "web", "ana")
    ask = TextOut(channel="web", chat_id="c1", text="Send?")
    audit = [AuditRecord("flow_approval", "send", "asked", ana)]
    assert await storage.ask_flow(approval("a1", ana), ask, audit)
    assert not await storage.ask_flow(approval("a2", ana), ask, audit)  # same node
    assert await storage.user_role(ana) == "owner"
    assert await storage.user_role("nobody") is None

    assert await storage.answer_flow_approval("zz", ana, True) == ("unknown", None)
    assert (await storage.answer_flow_approval("a1", "mallory", True))[0] == "not_yours"
    answer, record = await storage.answer_flow_approval("a1", ana, True, audit)
    assert answer == "approved" and record is not None
    assert record.call_key == flow_call_key("r1", "send") and record.inbox_id is None
    assert (await storage.answer_flow_approval("a1", ana, False))[0] == "expired"
    assert [a.id for a in await storage.answered_flow_approvals()] == ["a1"]
    await storage.expire_flow_approval("a1")
    assert await storage.answered_flow_approvals() == []


async def test_replicas_ask_a_flow_node_once(pg_url: str) -> None:
    replicas = [SQLStorage(PostgresEngine(pg_url, threads=4)) for _ in range(2)]
    for r in replicas:
        await r.open()
    try:
        ana = await replicas[0].create_user("Ana", "owner", "web", "ana")
        ask = TextOut(channel="web", chat_id="c1", text="Send?")
        asked = await asyncio.gather(
            *(replicas[i % 2].ask_flow(approval(f"a{i}", ana), ask) for i in range(12))
        )
        assert sum(asked) == 1
        winner = f"a{asked.index(True)}"
        answers = await asyncio.gather(
            *(replicas[i % 2].answer_flow_approval(winner, ana, True) for i in range(8))
        )
        assert sorted(a for a, _ in answers) == ["approved"] + ["expired"] * 7
    finally:
        for r in replicas:
            await r.close()


def invocation(i: int, agent: str = "writer", user: str = "ana") -> AgentInvocation:
    return AgentInvocation(
        id=f"inv{i}",
        user_id=user,
        agent=agent,
        source="api",
        input=f"question {i}",
        output=None if i % 2 else f"answer {i}",
        status="error" if i % 2 else "ok",
        error="boom" if i % 2 else None,
        duration_s=0.25 * i,
        tokens_in=10 * i,
        tokens_out=i,
        created_at=1000.0 + i,
    )


async def test_agent_invocations_newest_first(storage: SQLStorage) -> None:
    for i in range(4):
        await storage.save_agent_invocation(invocation(i))
    await storage.save_agent_invocation(invocation(1))  # saved once
    await storage.save_agent_invocation(invocation(9, agent="other"))
    await storage.save_agent_invocation(invocation(8, user="bo"))
    found = await storage.agent_invocations("ana", "writer")
    assert found == [invocation(i) for i in (3, 2, 1, 0)]
    assert await storage.agent_invocations("ana", "writer", limit=1) == [invocation(3)]
