"""Approval requests in storage: bound to one user, one chat and one exact call, answered
once, expired by time; parking and closing a turn are single transactions."""

import asyncio
import time

from nexflow.bus.events import ConfirmationOut, InboundEvent
from nexflow.gateway.approvals import ApprovalService
from nexflow.storage import SQLStorage


async def parked(storage: SQLStorage, service: ApprovalService) -> tuple[str, str]:
    """A turn of a new user in telegram chat 42, parked on a new request: (user, its id)."""
    user = await storage.create_user("alice", "user", "telegram", "1")
    assert user
    session = await storage.chat_session(user, "telegram", "42")
    event = InboundEvent("telegram", "42", "s", "run it", user_id=user, session_id=session.id)
    inbox_id, _ = await storage.accept(event)
    start = await storage.begin_turn(inbox_id, 10, 3)
    assert start is not None and start.item.status == "running"
    record, ask = service.request(
        user, "telegram", "42", session.id, "Run?", "$ rm x", "k1", inbox_id
    )
    await storage.park_turn(inbox_id, '{"kind":"command"}', record, ask)
    return user, record.id


async def test_only_its_user_in_its_chat_can_answer_once(storage: SQLStorage) -> None:
    service = ApprovalService(storage, timeout_s=60)
    resumed: list[tuple[str, int]] = []
    service.resume = lambda session, inbox: resumed.append((session, inbox))
    alice, aid = await parked(storage, service)
    (item,) = await storage.due_outbox(1e12, 10)
    assert isinstance(item.outbound, ConfirmationOut) and item.outbound.confirmation_id == aid
    assert await storage.pending_inbox() == []  # parked: nothing to run at a restart
    assert await service.answer(aid, "mallory", True) == "not_yours"
    assert await service.answer(aid, alice, True, channel="telegram", chat_id="7") == "not_yours"
    assert resumed == []
    assert await service.answer(aid, alice, True, channel="telegram", chat_id="42") == "approved"
    assert len(resumed) == 1
    assert await service.answer(aid, alice, False) == "unknown"  # works once
    (again,) = await storage.pending_inbox()
    start = await storage.begin_turn(again.id, 10, 3)
    assert start is not None and start.decisions == {"k1": True} and start.checkpoint
    outcomes = [a["outcome"] for a in await storage.audit_tail(10, "confirmation")]
    assert outcomes == ["approved"]


async def test_expired_requests_are_refused_and_listed_for_closing(storage: SQLStorage) -> None:
    service = ApprovalService(storage, timeout_s=0.01)
    alice, aid = await parked(storage, service)
    await asyncio.sleep(0.02)
    assert await service.answer(aid, alice, True) == "expired"
    expired = await storage.expired_turns(time.time())
    assert [a.id for a, _, _ in expired] == [aid]
    assert (await storage.get_approval(aid)).status == "expired"  # type: ignore[union-attr]
    assert await storage.approvals_for(alice) == []


async def test_issued_request_is_consumed_once_for_the_same_call(storage: SQLStorage) -> None:
    service = ApprovalService(storage, timeout_s=5)
    pending = await service.issue("alice", "web", "Run?", "x", key="shell:abc")
    assert not await service.consume(pending.id, "alice", "shell:other")
    assert not await service.consume(pending.id, "bob", "shell:abc")
    assert await service.consume(pending.id, "alice", "shell:abc")
    assert not await service.consume(pending.id, "alice", "shell:abc")


async def test_runs_are_counted_and_a_poison_turn_dies(storage: SQLStorage) -> None:
    alice = await storage.create_user("alice", "user", "web", "a")
    session = await storage.chat_session(alice, "web", "c")
    event = InboundEvent("web", "c", "s", "boom", user_id=alice, session_id=session.id)
    inbox_id, _ = await storage.accept(event)
    for attempt in (1, 2):
        start = await storage.begin_turn(inbox_id, 10, 2)
        assert start is not None and start.item.attempts == attempt and not start.dead
        assert await storage.fail_turn(inbox_id, "RuntimeError: boom", 2) == (
            "pending" if attempt == 1 else "dead"
        )
    assert await storage.begin_turn(inbox_id, 10, 2) is None
    (dead,) = await storage.dead_letters(alice, 10)
    assert (dead.inbox_id, dead.attempts, dead.last_error) == (inbox_id, 2, "RuntimeError: boom")
    assert await storage.dead_letters("bob", 10) == []
    item = await storage.retry_dead(inbox_id)
    assert item is not None and item.status == "pending" and item.attempts == 0
