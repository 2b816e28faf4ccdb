"""Several gateways on one Postgres: every read-check-write of the exactly-once path is
atomic. A turn's run is claimed once at a time (the inbox row is taken ``FOR UPDATE SKIP
LOCKED``: a busy row is skipped, never waited for) and no attempt is lost; a turn
completed twice, an approval answered twice, a pairing code approved twice or a new
sender seen twice at once each happen once."""

import asyncio
from collections.abc import AsyncIterator

import psycopg
import pytest

from nexflow.bus.events import ConfirmationOut, InboundEvent, TextOut
from nexflow.storage import NewMessage, SQLStorage
from nexflow.storage.base import ApprovalRecord
from nexflow.storage.engine import PostgresEngine


async def accepted(storage: SQLStorage, text: str = "go") -> int:
    user = await storage.create_user("ann", "user", "web", "ann")
    session = await storage.chat_session(user, "web", "c")
    event = InboundEvent("web", "c", "ann", text, user_id=user, session_id=session.id)
    inbox_id, _ = await storage.accept(event)
    return inbox_id


@pytest.fixture
async def replicas(pg_url: str) -> AsyncIterator[tuple[SQLStorage, SQLStorage]]:
    """Two gateways' storages on one Postgres schema."""
    a, b = SQLStorage(PostgresEngine(pg_url)), SQLStorage(PostgresEngine(pg_url))
    await a.open()
    await b.open()
    yield a, b
    await a.close()
    await b.close()


async def test_a_turn_another_replica_is_claiming_is_skipped_not_waited_for(
    replicas: tuple[SQLStorage, SQLStorage], pg_url: str
) -> None:
    a, _ = replicas
    inbox_id = await accepted(a)
    with psycopg.connect(pg_url) as other:  # a replica in the middle of its claim
        other.execute("SELECT id FROM inbox WHERE id=%s FOR UPDATE", (inbox_id,))
        assert await asyncio.wait_for(a.begin_turn(inbox_id, 10, 3), 5) is None
        other.rollback()
    start = await asyncio.wait_for(a.begin_turn(inbox_id, 10, 3), 5)
    assert start is not None and start.item.attempts == 1


async def test_concurrent_claims_on_two_replicas_lose_no_attempt(
    replicas: tuple[SQLStorage, SQLStorage],
) -> None:
    a, b = replicas
    inbox_id = await accepted(a)
    claims = await asyncio.gather(
        *(s.begin_turn(inbox_id, 10, 1000) for _ in range(20) for s in (a, b))
    )
    started = [c for c in claims if c is not None]
    assert started
    # Every run that started counted its own attempt: no two saw the same count.
    counts = sorted(c.item.attempts for c in started)
    assert counts == list(range(1, len(started) + 1))
    item = await b.get_inbox(inbox_id)
    assert item is not None and item.attempts == len(started)


async def test_a_turn_completed_on_two_replicas_at_once_is_answered_once(
    replicas: tuple[SQLStorage, SQLStorage],
) -> None:
    a, b = replicas
    inbox_id = await accepted(a)
    item = await a.get_inbox(inbox_id)
    assert item is not None and item.event.session_id
    reply = TextOut(channel="web", chat_id="c", session_id=item.event.session_id, text="ok")
    said = [NewMessage("user", "go"), NewMessage("assistant", "ok")]
    ids = await asyncio.gather(*(s.complete(inbox_id, said, reply) for s in (a, b, a, b)))
    assert len(set(ids)) == 1
    assert [m.content for m in await b.history(item.event.session_id, 10)] == ["go", "ok"]


async def test_an_approval_answered_on_two_replicas_at_once_counts_once(
    replicas: tuple[SQLStorage, SQLStorage],
) -> None:
    a, b = replicas
    inbox_id = await accepted(a)
    user = (await a.find_user("web", "ann") or ("", ""))[0]
    assert await a.begin_turn(inbox_id, 10, 3) is not None
    record = ApprovalRecord("ap1", inbox_id, user, "web", "c", None, "Run?", "$ x", "k",
                            expires_at=1e12)  # fmt: skip
    ask = ConfirmationOut(channel="web", chat_id="c", confirmation_id="ap1", title="Run?",
                          detail="$ x", expires_at=1e12)  # fmt: skip
    await a.park_turn(inbox_id, "{}", record, ask)
    answers = await asyncio.gather(
        *(s.answer_approval("ap1", user, approve=i % 2 == 0) for i, s in enumerate((a, b) * 3))
    )
    decided = [answer for answer, _ in answers if answer in ("approved", "declined")]
    assert len(decided) == 1
    stored = await b.get_approval("ap1")
    assert stored is not None and stored.status == decided[0]


async def test_a_pairing_code_approved_on_two_replicas_at_once_makes_one_user(
    replicas: tuple[SQLStorage, SQLStorage],
) -> None:
    a, b = replicas
    request, _ = await a.pairing_request("telegram", "42", "42", "Bo", None, 600)
    results = await asyncio.gather(
        *(s.approve_pairing("telegram", request.code) for s in (a, b, a, b))
    )
    approved = [r for r in results if r is not None]
    assert len(approved) == 1
    users = await a._run(lambda c: c.execute("SELECT COUNT(*) AS n FROM users").fetchone()["n"])
    assert users == 1


async def test_a_new_sender_seen_on_two_replicas_at_once_is_one_user(
    replicas: tuple[SQLStorage, SQLStorage],
) -> None:
    a, b = replicas
    made = await asyncio.gather(
        *(s.create_user("Bo", "user", "telegram", "42") for s in (a, b, a, b)),
        *(s.create_user("Me", "owner", "discord", str(i)) for i, s in enumerate((a, b, a, b))),
    )
    assert len(set(made[:4])) == 1
    assert len(set(made[4:])) == 1
    users = await b._run(lambda c: c.execute("SELECT COUNT(*) AS n FROM users").fetchone()["n"])
    assert users == 2
