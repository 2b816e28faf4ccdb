"""The repository interfaces per aggregate (nexflow.storage.base) and the one transaction
a turn's result shares across them.

- :class:`Storage` is exactly the aggregates' composition (plus open/close/ping), no
  method in two aggregates, and each aggregate's methods are implemented by the
  repository the docs name for it (not written back into ``SQLStorage``).
- A turn's result spans Sessions (its messages), Audit, Queue (the reply, the inbox row)
  and Turns (checkpoint, answers) and commits all of it or none: a write refused half
  way through leaves nothing of the turn behind, on SQLite and Postgres.
"""

from __future__ import annotations

import inspect
from typing import Protocol

import pytest

from nexflow.bus.events import InboundEvent, TextOut
from nexflow.storage import (
    Audit,
    AuditRecord,
    Dashboard,
    Hooks,
    Identities,
    NewMessage,
    Queue,
    Sessions,
    SQLStorage,
    Stats,
    Storage,
    StorageError,
    Tasks,
    Turns,
)
from nexflow.storage.connection import SQLConnection
from nexflow.storage.repo_audit import AuditRepo
from nexflow.storage.repo_dashboard import DashboardRepo
from nexflow.storage.repo_hooks import HookRepo
from nexflow.storage.repo_identity import IdentityRepo
from nexflow.storage.repo_queue import QueueRepo
from nexflow.storage.repo_sessions import SessionRepo
from nexflow.storage.repo_stats import StatsRepo
from nexflow.storage.repo_turns import TurnRepo

WHERE: dict[type, type[SQLConnection]] = {
    Identities: IdentityRepo,
    Sessions: SessionRepo,
    Queue: QueueRepo,
    Turns: TurnRepo,
    Audit: AuditRepo,
    Tasks: AuditRepo,
    Stats: StatsRepo,
    Dashboard: DashboardRepo,
    Hooks: HookRepo,
}


def members(proto: type) -> set[str]:
    """The methods a protocol declares, its bases' included."""
    return {
        name
        for cls in proto.__mro__
        if cls not in (Protocol, object) and getattr(cls, "_is_protocol", False)
        for name, value in vars(cls).items()
        if inspect.isfunction(value) and not name.startswith("_")
    }


def test_storage_is_the_composition_of_the_aggregates() -> None:
    seen: dict[str, type] = {}
    for proto in WHERE:
        for name in members(proto):
            assert name not in seen, f"{name} is in both {seen[name].__name__} and {proto}"
            seen[name] = proto
    assert members(Storage) == set(seen) | {"open", "close", "ping"}
    # SQLStorage composes the repositories and writes no query of its own.
    assert not [name for name in vars(SQLStorage) if not name.startswith("__")]


@pytest.mark.parametrize("proto", list(WHERE), ids=lambda p: p.__name__)
def test_each_aggregate_is_implemented_by_its_repository(proto: type) -> None:
    repo = WHERE[proto]
    assert issubclass(SQLStorage, repo)
    missing = sorted(name for name in members(proto) if name not in vars(repo))
    assert not missing, f"{proto.__name__}: not in {repo.__name__}: {missing}"


async def test_a_turns_result_commits_across_aggregates_or_not_at_all(
    storage: SQLStorage,
) -> None:
    user = await storage.create_user("owner", "owner", "web", "owner")
    session = await storage.ensure_session("s1", user, "web", "chat")
    event = InboundEvent(
        channel="web", chat_id="chat", sender_id="owner", message="hi", user_id=user,
        session_id=session.id,
    )  # fmt: skip
    inbox_id, _ = await storage.accept(event)
    start = await storage.begin_turn(inbox_id, history_limit=10, max_attempts=3)
    assert start is not None and start.item.status == "running"
    reply = TextOut(channel="web", chat_id="chat", session_id="s1", text="hello")
    messages = [NewMessage("user", "hi"), NewMessage("assistant", "hello")]
    # The audit table refuses a record without a name: written after the messages, so
    # the turn's transaction has already inserted them when it fails.
    broken = AuditRecord("llm_call", None)  # type: ignore[arg-type]

    with pytest.raises(StorageError):
        await storage.complete(inbox_id, messages, reply, [AuditRecord("tool_call", "t"), broken])

    assert await storage.history("s1", 10) == []
    assert await storage.audit_tail(10) == []
    assert await storage.outbox_for_inbox(inbox_id) is None
    item = await storage.get_inbox(inbox_id)
    assert item is not None and item.status == "running"
    assert (await storage.get_session("s1")) == session  # updated_at untouched

    # The same turn completes once the write is a valid one, all of it.
    out_id = await storage.complete(inbox_id, messages, reply, [AuditRecord("llm_call", "m")])
    assert [m.content for m in await storage.history("s1", 10)] == ["hi", "hello"]
    assert [a["name"] for a in await storage.audit_tail(10)] == ["m"]
    done = await storage.outbox_for_inbox(inbox_id)
    assert done is not None and done.id == out_id
