"""Pairing and linking in the identity middleware, on the real SQLite storage."""

import pytest

from nexflow.bus import InboundEvent, NotAllowed, RateLimited
from nexflow.bus.middleware import (
    Accepted,
    Identity,
    PairingPending,
    PublishContext,
    RateLimit,
    build_chain,
)
from nexflow.config.model import ChannelAccess, RateLimitConfig, SecurityConfig
from nexflow.storage import SQLStorage


async def final(event: InboundEvent, ctx: PublishContext) -> Accepted:
    return Accepted(1, "s", event)


def event(
    channel: str = "telegram", sender: str = "42", text: str = "hi", **meta: object
) -> InboundEvent:
    return InboundEvent(
        channel=channel, chat_id=f"chat-{sender}", sender_id=sender, message=text, metadata=meta
    )


async def test_unknown_sender_gets_one_code_then_silence(storage: SQLStorage) -> None:
    chain = build_chain([Identity(storage, SecurityConfig())], final)
    with pytest.raises(PairingPending) as first:
        await chain(event(username="mallory"), PublishContext())
    code = first.value.code
    assert len(code) == 6 and code in first.value.user_message
    for _ in range(3):  # repeats: the same live code, nothing to send
        with pytest.raises(PairingPending) as again:
            await chain(event(), PublishContext())
        assert again.value.code == code and again.value.user_message == ""
    (request,) = await storage.pairing_requests()
    assert (request.sender_id, request.name, request.chat_id) == ("42", "mallory", "chat-42")
    assert request.expires_at - request.created_at == pytest.approx(3600)


async def test_approval_creates_a_user_and_is_audited(storage: SQLStorage) -> None:
    chain = build_chain([Identity(storage, SecurityConfig())], final)
    with pytest.raises(PairingPending) as info:
        await chain(event(language="ru"), PublishContext())
    assert "код" in info.value.user_message  # told in their Telegram language
    assert await storage.approve_pairing("telegram", "WRONG1") is None
    approved = await storage.approve_pairing("telegram", info.value.code.lower())
    assert approved is not None
    request, user_id = approved
    assert request.lang == "ru"
    assert await storage.find_user("telegram", "42") == (user_id, "user")
    assert await storage.pairing_requests() == []
    accepted = await chain(event(), PublishContext())
    assert accepted.event.user_id == user_id and accepted.event.metadata["lang"] == "ru"
    audit = await storage.audit_tail(10, "pairing")
    assert [a["name"] for a in audit] == ["approved", "requested"]


async def test_denial_drops_the_request(storage: SQLStorage) -> None:
    chain = build_chain([Identity(storage, SecurityConfig())], final)
    with pytest.raises(PairingPending) as info:
        await chain(event(), PublishContext())
    denied = await storage.deny_pairing("telegram", info.value.code)
    assert denied is not None and denied.sender_id == "42"
    assert await storage.find_user("telegram", "42") is None
    assert await storage.approve_pairing("telegram", info.value.code) is None
    assert (await storage.audit_tail(1, "pairing"))[0]["name"] == "denied"
    with pytest.raises(PairingPending) as fresh:  # asking again gets a new code
        await chain(event(), PublishContext())
    assert fresh.value.user_message and fresh.value.code != info.value.code


async def test_expired_code_is_replaced(storage: SQLStorage) -> None:
    chain = build_chain([Identity(storage, SecurityConfig(), pairing_ttl_s=0.0)], final)
    codes = set()
    for _ in range(2):
        with pytest.raises(PairingPending) as info:
            await chain(event(), PublishContext())
        assert info.value.user_message
        codes.add(info.value.code)
    assert len(codes) == 2
    assert await storage.pairing_requests() == []  # none live


async def test_owner_and_allowlisted_skip_pairing(storage: SQLStorage) -> None:
    chain = build_chain([Identity(storage, SecurityConfig(owner={"telegram": ["1"]}))], final)
    owner = await chain(event(sender="1"), PublishContext())
    assert owner.event.role == "owner"
    listed = await chain(event(sender="2", allowlisted=True), PublishContext())
    assert listed.event.role == "user"
    assert await storage.pairing_requests() == []


async def test_disabled_channel_refuses_link_too(storage: SQLStorage) -> None:
    security = SecurityConfig(channels={"discord": ChannelAccess(policy="disabled")})
    chain = build_chain([Identity(storage, security)], final)
    with pytest.raises(NotAllowed) as info:
        await chain(event("discord", text="/link ABCDEF"), PublishContext())
    assert "disabled" in info.value.user_message


async def test_link_attaches_an_identity_to_the_same_user(storage: SQLStorage) -> None:
    identity = Identity(storage, SecurityConfig(channels={"discord": ChannelAccess(policy="open")}))
    chain = build_chain([identity], final)
    web = await chain(event("web", "owner"), PublishContext())
    discord = await chain(event("discord", "9"), PublishContext())  # cached as its own user
    assert discord.event.user_id != web.event.user_id
    assert web.event.user_id is not None
    code = await storage.issue_link_code(web.event.user_id, 600)
    # an unknown Telegram sender enters the code: no pairing needed
    linked = await chain(event(text=f"/link {code.lower()}"), PublishContext())
    assert linked.immediate is not None and linked.immediate.startswith("Linked")
    after = await chain(event(), PublishContext())
    assert after.event.user_id == web.event.user_id and after.event.role == "owner"
    # a known (cached) sender re-links; the cache is dropped
    code = await storage.issue_link_code(web.event.user_id, 600)
    await chain(event("discord", "9", text=f"/link {code}"), PublishContext())
    assert (await chain(event("discord", "9"), PublishContext())).event.user_id == (
        web.event.user_id
    )
    # a code is used once
    again = await chain(event("discord", "7", text=f"/link {code}"), PublishContext())
    assert again.immediate is not None and "expired" in again.immediate
    audit = await storage.audit_tail(5, "identity")
    assert [a["data"]["channel"] for a in audit] == ["discord", "telegram"]
    assert audit[0]["data"]["previous_user"] == discord.event.user_id


async def test_link_from_the_web_is_refused_and_wrong_codes_are_limited(
    storage: SQLStorage,
) -> None:
    chain = build_chain([Identity(storage, SecurityConfig(), link_attempts=2)], final)
    web = await chain(event("web", "owner", text="/link ABCDEF"), PublishContext())
    assert web.immediate is not None and "other channel" in web.immediate
    assert web.event.user_id is None
    user = await storage.create_user("u", "user", "discord", "5")
    for _ in range(2):
        await chain(event(text="/link ZZZZZZ"), PublishContext())
    code = await storage.issue_link_code(user, 600)
    blocked = await chain(event(text=f"/link {code}"), PublishContext())
    assert blocked.immediate is not None and "expired" in blocked.immediate
    assert await storage.find_user("telegram", "42") is None


async def test_link_code_replaces_the_previous_and_expires(storage: SQLStorage) -> None:
    user = await storage.create_user("u", "user", "web", "owner")
    first = await storage.issue_link_code(user, 600)
    second = await storage.issue_link_code(user, 600)
    assert await storage.redeem_link_code(first, "telegram", "1") is None
    assert await storage.redeem_link_code(second, "telegram", "1") == user
    stale = await storage.issue_link_code(user, 0.0)
    assert await storage.redeem_link_code(stale, "telegram", "2") is None


async def test_messages_follow_the_users_language(storage: SQLStorage) -> None:
    identity = Identity(
        storage, SecurityConfig(channels={"telegram": ChannelAccess(policy="open")})
    )
    chain = build_chain([identity, RateLimit(RateLimitConfig(per_minute=1, burst=1))], final)
    first = await chain(event(language="en-US"), PublishContext())
    assert first.event.metadata["lang"] == "en"
    assert first.event.user_id is not None
    await storage.set_user_lang(first.event.user_id, "ru")
    identity.forget(first.event.user_id)
    with pytest.raises(RateLimited) as info:
        await chain(event(), PublishContext())
    assert "Слишком много" in info.value.args[0]


async def test_the_owner_is_one_user_on_every_channel(storage: SQLStorage) -> None:
    identity = Identity(storage, SecurityConfig(owner={"discord": ["9"], "telegram": ["4"]}))
    chain = build_chain([identity], final)
    web = await chain(event("web", "owner"), PublishContext())
    discord = await chain(event("discord", "9"), PublishContext())
    telegram = await chain(event("telegram", "4"), PublishContext())
    assert web.event.user_id == discord.event.user_id == telegram.event.user_id
    assert {web.event.role, discord.event.role, telegram.event.role} == {"owner"}
