"""A turn's runs on both engines: counted, failed, dead (see test_replicas for several
gateways claiming the same turn)."""

from nexflow.bus.events import InboundEvent
from nexflow.storage import SQLStorage


async def accepted(storage: SQLStorage, text: str = "go") -> int:
    user = await storage.create_user("ann", "user", "web", "ann")
    session = await storage.chat_session(user, "web", "c")
    event = InboundEvent("web", "c", "ann", text, user_id=user, session_id=session.id)
    inbox_id, _ = await storage.accept(event)
    return inbox_id


async def test_begin_turn_counts_runs_and_loads_history(storage: SQLStorage) -> None:
    inbox_id = await accepted(storage)
    first = await storage.begin_turn(inbox_id, 10, 3)
    second = await storage.begin_turn(inbox_id, 10, 3)  # an interrupted run, again
    assert first is not None and second is not None
    assert (first.item.attempts, second.item.attempts) == (1, 2)
    assert second.item.status == "running" and second.checkpoint is None and second.decisions == {}
    assert second.session.id == first.session.id and second.history == []
    assert await storage.fail_turn(inbox_id, "boom", 3) == "pending"
    third = await storage.begin_turn(inbox_id, 10, 3)
    assert third is not None and third.item.attempts == 3
    dead = await storage.begin_turn(inbox_id, 10, 3)
    assert dead is not None and dead.dead and dead.item.status == "dead"
    assert await storage.begin_turn(inbox_id, 10, 3) is None
    (letter,) = await storage.dead_letters(None, 10)
    assert (letter.inbox_id, letter.attempts, letter.last_error) == (inbox_id, 4, "boom")
