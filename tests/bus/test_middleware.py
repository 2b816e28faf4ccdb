import pytest

from nexflow.bus import InboundEvent, NotAllowed, RateLimited
from nexflow.bus.middleware import (
    Accepted,
    Identity,
    PublishContext,
    RateLimit,
    build_chain,
)
from nexflow.config.model import ChannelAccess, RateLimitConfig, SecurityConfig


class Users:
    def __init__(self) -> None:
        self.ids: dict[tuple[str, str], tuple[str, str]] = {}
        self.lookups = 0

    async def find_user(self, channel: str, external_id: str) -> tuple[str, str] | None:
        self.lookups += 1
        return self.ids.get((channel, external_id))

    async def create_user(self, name: str, role: str, channel: str, external_id: str) -> str:
        user_id = f"u-{channel}-{external_id}"
        self.ids[(channel, external_id)] = (user_id, role)
        return user_id

    async def user_lang(self, user_id: str) -> str | None:
        return None

    async def pairing_request(self, *args: object) -> tuple[object, bool]:
        raise AssertionError("pairing is tested with the real storage (test_pairing.py)")

    async def redeem_link_code(self, code: str, channel: str, external_id: str) -> str | None:
        return None


async def final(event: InboundEvent, ctx: PublishContext) -> Accepted:
    return Accepted(1, "s", event)


def event(channel: str = "telegram", sender: str = "42") -> InboundEvent:
    return InboundEvent(channel=channel, chat_id="c", sender_id=sender, message="hi")


async def test_web_is_the_owner_and_lookups_are_cached() -> None:
    users = Users()
    chain = build_chain([Identity(users, SecurityConfig())], final)
    first = await chain(event("web", "owner"), PublishContext())
    await chain(event("web", "owner"), PublishContext())
    assert first.event.user_id == "u-web-owner"
    assert users.ids[("web", "owner")][1] == "owner"
    assert users.lookups == 1


async def test_unknown_sender_is_refused_on_an_allowlist_channel() -> None:
    security = SecurityConfig(channels={"telegram": ChannelAccess(policy="allowlist")})
    chain = build_chain([Identity(Users(), security)], final)
    with pytest.raises(NotAllowed) as info:
        await chain(event(), PublishContext())
    assert "telegram:42" in info.value.user_message


@pytest.mark.parametrize(
    ("access", "allowed"),
    [
        (ChannelAccess(policy="open"), True),
        (ChannelAccess(policy="allowlist", allow=["42"]), True),
        (ChannelAccess(policy="allowlist", allow=["7"]), False),
        (ChannelAccess(policy="disabled"), False),
    ],
)
async def test_channel_policies(access: ChannelAccess, allowed: bool) -> None:
    chain = build_chain([Identity(Users(), SecurityConfig(channels={"telegram": access}))], final)
    if allowed:
        assert (await chain(event(), PublishContext())).event.user_id == "u-telegram-42"
    else:
        with pytest.raises(NotAllowed):
            await chain(event(), PublishContext())


async def test_owner_ids_from_config() -> None:
    users = Users()
    chain = build_chain([Identity(users, SecurityConfig(owner={"telegram": ["42"]}))], final)
    await chain(event(), PublishContext())
    assert users.ids[("telegram", "42")][1] == "owner"


async def test_rate_limit_per_user_and_owner_exempt() -> None:
    security = SecurityConfig(channels={"telegram": ChannelAccess(policy="open")})
    chain = build_chain(
        [Identity(Users(), security), RateLimit(RateLimitConfig(per_minute=1, burst=2))], final
    )
    await chain(event(sender="1"), PublishContext())
    await chain(event(sender="1"), PublishContext())
    with pytest.raises(RateLimited) as info:
        await chain(event(sender="1"), PublishContext())
    assert info.value.retry_after_s > 0
    await chain(event(sender="2"), PublishContext())  # another user has their own bucket
    for _ in range(5):
        await chain(event("web", "owner"), PublishContext())
