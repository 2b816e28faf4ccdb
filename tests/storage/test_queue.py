"""Sessions, inbox, outbox and the session timeline on both engines: the queries that
read JSON out of stored payloads, search text, count, and tolerate an older schema."""

import time

from nexflow.bus.events import InboundEvent, TextOut
from nexflow.storage import AuditRecord, NewMessage, SQLStorage
from nexflow.storage.base import ApprovalRecord, InboxItem, OutboxItem


async def user_session(storage: SQLStorage, sid: str = "s1") -> tuple[str, str]:
    user = await storage.create_user("ann", "user", "web", "ann")
    session = await storage.ensure_session(sid, user, "web", "chat")
    return user, session.id


def said(user: str, session: str, text: str, ext: str | None = None) -> InboundEvent:
    return InboundEvent(
        "web", "chat", "ann", text, user_id=user, session_id=session, external_id=ext
    )


async def answer(storage: SQLStorage, event: InboundEvent, reply: str) -> int:
    inbox_id, _ = await storage.accept(event)
    assert event.session_id is not None
    out = TextOut(channel="web", chat_id="chat", session_id=event.session_id, text=reply)
    await storage.complete(
        inbox_id, [NewMessage("user", event.message), NewMessage("assistant", reply)], out
    )
    return inbox_id


async def test_sessions_are_created_once_and_the_owner_is_one_user(
    storage: SQLStorage,
) -> None:
    owner = await storage.create_user("me", "owner", "web", "owner")
    assert await storage.create_user("me", "owner", "telegram", "7") == owner
    assert await storage.create_user("x", "owner", "web", "owner") == owner
    assert await storage.find_user("telegram", "7") == (owner, "owner")
    first = await storage.ensure_session("fixed", owner, "web", "c")
    again = await storage.ensure_session("fixed", owner, "web", "other")
    assert again == first and again.chat_id == "c"
    assert [s.id for s in await storage.list_sessions(owner, 10)] == ["fixed"]
    assert await storage.get_session("nope") is None


async def test_summaries_title_count_and_search_in_any_script(storage: SQLStorage) -> None:
    user, s1 = await user_session(storage, "s1")
    _, s2 = await user_session(storage, "s2")
    _, s3 = await user_session(storage, "s3")
    await answer(storage, said(user, s1, "Привет, МИР\nsecond line"), "здравствуй")
    await answer(storage, said(user, s2, "100% sure? " + "x" * 100), "yes")
    await storage.accept(said(user, s3, "still running"))  # no messages yet: the inbox says

    summaries = {s.id: s for s in await storage.session_summaries(user, None, 10)}
    assert summaries[s1].title == "Привет, МИР second line"
    assert summaries[s1].messages == 2
    assert summaries[s2].title.startswith("100% sure?") and summaries[s2].title.endswith("…")
    assert (summaries[s3].title, summaries[s3].messages) == ("still running", 0)

    found = await storage.session_summaries(user, "  мир ", 10)
    assert [s.id for s in found] == [s1]
    assert [s.id for s in await storage.session_summaries(user, "ЗДРАВСТВУЙ", 10)] == [s1]
    assert [s.id for s in await storage.session_summaries(user, "100%", 10)] == [s2]
    assert await storage.session_summaries(user, "%", 10) != []  # a literal percent sign
    assert await storage.session_summaries(user, "absent", 10) == []
    assert await storage.session_summaries("someone else", None, 10) == []


async def test_history_pages_and_turn_messages(storage: SQLStorage) -> None:
    user, sid = await user_session(storage)
    first = await answer(storage, said(user, sid, "one"), "1")
    await answer(storage, said(user, sid, "two"), "2")
    history = await storage.history(sid, 3)
    assert [m.content for m in history] == ["1", "two", "2"]
    page = await storage.session_messages(sid, history[0].id, None, 10)
    assert [m.content for m in page] == ["two", "2"]
    upto = await storage.session_messages(sid, 0, history[0].id, 10)
    assert [m.content for m in upto] == ["one", "1"]

    turns = await storage.turn_messages(sid, 10)
    assert [(t.inbox_id, t.role) for t in turns][:2] == [(first, "user"), (first, "assistant")]
    assert all(t.turn_at is not None and t.turn_at <= t.created_at for t in turns)


async def test_complete_queues_extra_items_and_a_delivered_reply(storage: SQLStorage) -> None:
    user, sid = await user_session(storage)
    inbox_id, _ = await storage.accept(said(user, sid, "hi"))
    reply = TextOut(channel="web", chat_id="chat", session_id=sid, text="hello")
    extra = TextOut(channel="tg", chat_id="9", text="fyi")
    oid = await storage.complete(
        inbox_id, [NewMessage("assistant", "hello", tool_calls=[{"id": "c1"}])], reply,
        [AuditRecord("llm_call", "m", data={"tokens": 3})], delivered=True, extra=[extra],
    )  # fmt: skip
    item = await storage.outbox_for_inbox(inbox_id)
    assert item is not None and (item.id, item.status) == (oid, "delivered")
    (due,) = await storage.due_outbox(time.time() + 1, 10)
    assert due.outbound == extra and due.inbox_id is None
    (message,) = await storage.history(sid, 10)
    assert message.tool_calls == [{"id": "c1"}]
    (audit,) = await storage.audit_tail(10, "llm_call")
    assert audit["data"] == {"tokens": 3} and audit["outcome"] == "ok"

    rows = await storage.session_outbox(sid, 0.0, 10)
    assert [(r.id, r.inbox_id, r.status) for r in rows] == [(oid, inbox_id, "delivered")]
    assert await storage.open_turns(sid, 10) == []


async def test_reply_or_dead_letter_reads_a_turns_outcome_in_one_query(
    storage: SQLStorage,
) -> None:
    """What a replica waiting for a turn that runs elsewhere polls: nothing while the
    turn runs, then its reply row, or the inbox item of a dead letter (whose notice is no
    reply); an unknown id is None too."""
    user, sid = await user_session(storage)
    running, _ = await storage.accept(said(user, sid, "hi"))
    assert await storage.reply_or_dead_letter(running) is None
    assert await storage.reply_or_dead_letter(running + 1000) is None

    replied = await answer(storage, said(user, sid, "again"), "hello")
    done = await storage.reply_or_dead_letter(replied)
    assert isinstance(done, OutboxItem) and done == await storage.outbox_for_inbox(replied)
    assert isinstance(done.outbound, TextOut) and done.outbound.text == "hello"

    notice = TextOut(channel="web", chat_id="chat", session_id=sid, text="gave up")
    await storage.bury_turn(running, "boom", notice, [])
    dead = await storage.reply_or_dead_letter(running)
    assert isinstance(dead, InboxItem) and dead == await storage.get_inbox(running)
    assert dead.status == "dead" and dead.event.message == "hi"


async def test_open_turns_list_what_has_no_reply(storage: SQLStorage) -> None:
    user, sid = await user_session(storage)
    waiting, _ = await storage.accept(said(user, sid, "first"))
    await answer(storage, said(user, sid, "answered"), "ok")
    (turn,) = await storage.open_turns(sid, 10)
    assert (turn.inbox_id, turn.message, turn.status) == (waiting, "first", "pending")


async def test_approval_status_reads_audit_and_approvals(storage: SQLStorage) -> None:
    await storage.audit(
        [
            AuditRecord("confirmation", "t", "requested", data={"id": "old"}),
            AuditRecord("confirmation", "t", "declined", data={"id": "spent"}),
            AuditRecord("confirmation", "t", "requested", data={"id": "asked"}),
        ]
    )
    for aid, status in (("spent", "used"), ("asked", "approved"), ("fresh", "pending")):
        await storage.issue_approval(
            ApprovalRecord(aid, None, "u", "web", "c", None, "t", "d", "k", expires_at=1e12)
        )
        if status != "pending":
            await storage._exec("UPDATE approvals SET status=? WHERE id=?", (status, aid))
    got = await storage.approval_status(["old", "spent", "asked", "fresh", "none", "old"])
    assert got == {"old": "pending", "spent": "declined", "asked": "approved", "fresh": "pending"}
    assert await storage.approval_status([]) == {}


async def test_approval_status_tolerates_a_schema_without_approvals(
    storage: SQLStorage,
) -> None:
    await storage.audit([AuditRecord("confirmation", "t", "approved", data={"id": "a1"})])
    await storage._exec("DROP TABLE approvals", ())
    assert await storage.approval_status(["a1", "a2"]) == {"a1": "approved"}
    assert await storage.ping()  # the connection is still usable (Postgres: no aborted tx)


async def test_webhook_deliveries_are_remembered_for_a_while(storage: SQLStorage) -> None:
    assert await storage.remember_delivery("ci", "d1", 1000.0, 60.0) is True
    assert await storage.remember_delivery("ci", "d1", 1010.0, 60.0) is False
    assert await storage.remember_delivery("other", "d1", 1010.0, 60.0) is True
    assert await storage.remember_delivery("ci", "d1", 1100.0, 60.0) is True  # forgotten


async def test_unparking_is_per_session(storage: SQLStorage) -> None:
    a = await storage.enqueue(TextOut(channel="web", chat_id="web", session_id="A", text="a"))
    b = await storage.enqueue(TextOut(channel="web", chat_id="web", session_id="B", text="b"))
    await storage.park_outbox(a)
    await storage.park_outbox(a)  # not pending any more: a no-op
    assert [i.id for i in await storage.due_outbox(time.time() + 1, 10)] == [b]
    assert await storage.unpark_session("B") == 0
    assert await storage.unpark_session("A") == 1
    assert [i.id for i in await storage.due_outbox(time.time() + 1, 10)] == [a, b]


async def test_pairing_and_link_codes_round_trip(storage: SQLStorage) -> None:
    request, new = await storage.pairing_request("telegram", "42", "42", "Bo", "ru", 60)
    again, new_again = await storage.pairing_request("telegram", "42", "42", "Bo", "ru", 60)
    assert (new, new_again) == (True, False) and again == request
    approved = await storage.approve_pairing("telegram", request.code.lower())
    assert approved is not None
    _, user = approved
    assert await storage.user_lang(user) == "ru"
    code = await storage.issue_link_code(user, 60)
    assert await storage.redeem_link_code(code.lower(), "discord", "d1") == user
    assert await storage.find_user("discord", "d1") == (user, "user")
    (link,) = await storage.audit_tail(1, "identity")
    assert link["data"]["previous_user"] is None
