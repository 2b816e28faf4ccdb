import asyncio

from nexflow.bus.events import ConfirmationOut, Outbound, TextOut
from nexflow.gateway.confirmations import ConfirmationService
from nexflow.storage import SQLiteStorage


class Posted:
    """Stands where the outbox dispatcher's ``post`` goes: queue durably, note the wake-up."""

    def __init__(self, storage: SQLiteStorage) -> None:
        self.storage = storage
        self.items: list[Outbound] = []

    async def __call__(self, out: Outbound) -> int:
        self.items.append(out)
        return await self.storage.enqueue(out)


async def test_request_is_delivered_and_only_its_user_can_answer(storage: SQLiteStorage) -> None:
    notified = Posted(storage)
    service = ConfirmationService(storage, notified, timeout_s=5)
    waiting = asyncio.create_task(service.ask("alice", "telegram", "42", "s", "Run?", "$ rm x"))
    await asyncio.sleep(0.05)
    (item,) = await storage.due_outbox(1e12, 10)
    ask = item.outbound
    assert isinstance(ask, ConfirmationOut) and ask.detail == "$ rm x" and notified.items
    assert await service.answer(ask.confirmation_id, "mallory", True) == "not_yours"
    assert not waiting.done()
    assert await service.answer(ask.confirmation_id, "alice", False) == "declined"
    assert await waiting is False
    assert await service.answer(ask.confirmation_id, "alice", True) == "unknown"


async def test_unanswered_request_expires_as_no(storage: SQLiteStorage) -> None:
    service = ConfirmationService(storage, Posted(storage), timeout_s=0.1)
    assert await service.ask("alice", "web", "c", None, "Run?", "x") is False
    kinds = [i.outbound for i in await storage.due_outbox(1e12, 10)]
    assert isinstance(kinds[-1], TextOut) and "expired" in kinds[-1].text
    outcomes = [a["outcome"] for a in await storage.audit_tail(10, "confirmation")]
    assert outcomes == ["expired", "requested"]


async def test_issued_request_is_consumed_once_for_the_same_key(storage: SQLiteStorage) -> None:
    service = ConfirmationService(storage, Posted(storage), timeout_s=5)
    pending = service.issue("alice", "web", "Run?", "x", key="shell:abc")
    assert not service.consume(pending.id, "alice", "shell:other")
    assert not service.consume(pending.id, "bob", "shell:abc")
    assert service.consume(pending.id, "alice", "shell:abc")
    assert not service.consume(pending.id, "alice", "shell:abc")
