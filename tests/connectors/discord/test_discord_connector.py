"""The real discord.py client, driven by the connector, against the fake Discord."""

import asyncio
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path

import pytest

from connectors.discord.connector import DiscordConnector
from connectors.discord.sdk import gateway, http
from nexflow.bus.events import (
    ButtonSpec,
    ConfirmationOut,
    FileOut,
    InboundEvent,
    PanelSnapshotOut,
    PatchReviewOut,
    TextOut,
)
from nexflow.gateway.connector import DeliveryError
from nexflow.testing.fake_discord import Failure, FakeDiscord

MakeBot = Callable[..., Awaitable[DiscordConnector]]  # the make_bot fixture (conftest.py)


class Inbox:
    def __init__(self, connector: DiscordConnector) -> None:
        self._events: AsyncIterator[InboundEvent] = connector.events()

    async def next(self, within_s: float = 5.0) -> InboundEvent:
        return await asyncio.wait_for(anext(self._events), within_s)


def text_to(chat_id: str, text: str) -> TextOut:
    return TextOut(channel="discord", chat_id=chat_id, text=text)


async def test_login_ready_and_endpoints_restored(fake: FakeDiscord, make_bot: MakeBot) -> None:
    base, url = http.Route.BASE, gateway.DiscordWebSocket.DEFAULT_GATEWAY
    bot = await make_bot()
    assert fake.identifies == 1
    assert fake.api_base == http.Route.BASE
    assert ("GET", "/oauth2/applications/@me") in fake.requests
    await bot.stop()
    assert (base, url) == (http.Route.BASE, gateway.DiscordWebSocket.DEFAULT_GATEWAY)


async def test_guild_message_with_mention_becomes_event(
    fake: FakeDiscord, bot: DiscordConnector
) -> None:
    inbox = Inbox(bot)
    alice = fake.add_user("alice", ("dev",))
    mid = await fake.message("general", alice, "hello there", mention_bot=True)
    event = await inbox.next()
    assert (event.channel, event.chat_id, event.sender_id) == (
        "discord",
        fake.channels["general"],
        alice,
    )
    assert event.message == "hello there"  # the mention is stripped
    assert event.external_id == mid
    assert event.metadata["channel_name"] == "general"
    assert event.metadata["dm"] is False
    assert event.metadata["allowlisted"] is False  # no allowed_roles: pairing decides
    await fake.wait_for(lambda: fake.channels["general"] in fake.typing)


async def test_without_mention_is_ignored_unless_replying_to_the_bot(
    fake: FakeDiscord, bot: DiscordConnector
) -> None:
    inbox = Inbox(bot)
    alice = fake.add_user("alice")
    general = fake.channels["general"]
    await fake.message("general", alice, "just chatting")
    await fake.message("general", alice, "ping", mention_bot=True)
    assert (await inbox.next()).message == "ping"
    await bot.send(text_to(general, "pong"))
    (sent,) = await fake.wait_sent(1)
    await fake.message("general", alice, "thanks", reply_to=sent.id)
    assert (await inbox.next()).message == "thanks"  # the bot's own echo was not an event


async def test_mention_only_off_answers_every_message(fake: FakeDiscord, make_bot: MakeBot) -> None:
    inbox = Inbox(await make_bot(mention_only=False))
    await fake.message("general", fake.add_user("alice"), "no mention")
    assert (await inbox.next()).message == "no mention"


async def test_allowed_roles_filter_members_and_dms(fake: FakeDiscord, make_bot: MakeBot) -> None:
    inbox = Inbox(await make_bot(allowed_roles=["dev"]))
    guest = fake.add_user("guest")
    outsider = fake.add_user("outsider", member=False)
    dev = fake.add_user("dev", ("dev",))
    await fake.message("general", guest, "let me in", mention_bot=True)
    await fake.dm(guest, "let me in")
    await fake.dm(outsider, "let me in")
    await fake.message("general", dev, "from dev", mention_bot=True)
    event = await inbox.next()
    assert event.sender_id == dev
    assert event.metadata["allowlisted"] is True  # a role counts as approval
    await fake.dm(dev, "dm from dev")
    event = await inbox.next()
    assert (event.sender_id, event.message) == (dev, "dm from dev")


async def test_channel_map_limits_listening(fake: FakeDiscord, make_bot: MakeBot) -> None:
    inbox = Inbox(await make_bot(channels={"general": fake.channels["general"]}))
    alice = fake.add_user("alice")
    await fake.message("dev", alice, "elsewhere", mention_bot=True)
    await fake.message("general", alice, "here", mention_bot=True)
    assert (await inbox.next()).message == "here"


async def test_dm_becomes_event_and_reply_goes_back(
    fake: FakeDiscord, bot: DiscordConnector
) -> None:
    inbox = Inbox(bot)
    bob = fake.add_user("bob", member=False)
    await fake.dm(bob, "hi in private")
    event = await inbox.next()
    assert event.message == "hi in private"
    assert event.chat_id == fake.dm_channel_id(bob)
    assert event.metadata["dm"] is True
    await bot.send(text_to(event.chat_id, "hello bob"))
    (sent,) = await fake.wait_sent(1)
    assert (sent.channel_id, sent.content) == (event.chat_id, "hello bob")


async def test_attachment_in_is_saved(fake: FakeDiscord, bot: DiscordConnector) -> None:
    inbox = Inbox(bot)
    bob = fake.add_user("bob")
    await fake.dm(bob, "see file", attachments=(fake.add_attachment("notes.txt", b"abc\n"),))
    (attachment,) = (await inbox.next()).attachments
    assert attachment.name == "notes.txt"
    assert await asyncio.to_thread(Path(attachment.path).read_bytes) == b"abc\n"


async def test_long_text_is_split_on_lines(fake: FakeDiscord, bot: DiscordConnector) -> None:
    lines = [f"line {i:04d} " + "x" * 80 for i in range(60)]  # ~5,400 characters
    await bot.send(text_to(fake.channels["general"], "\n".join(lines)))
    sent = await fake.wait_sent(3)
    assert len(sent) == 3
    assert all(len(m.content) <= 2000 for m in sent)
    assert "\n".join(m.content for m in sent).split("\n") == lines


async def test_confirmation_buttons_round_trip(fake: FakeDiscord, bot: DiscordConnector) -> None:
    inbox = Inbox(bot)
    alice = fake.add_user("alice")
    general = fake.channels["general"]
    await bot.send(
        ConfirmationOut(
            channel="discord",
            chat_id=general,
            confirmation_id="abcd1234",
            title="Run shell command?",
            detail="rm -rf build/",
            expires_at=time.time() + 60,
        )
    )
    (sent,) = await fake.wait_sent(1)
    assert sent.embeds[0]["title"] == "Run shell command?"
    assert "rm -rf build/" in sent.embeds[0]["description"]
    buttons = sent.components[0]["components"]
    assert [b["custom_id"] for b in buttons] == ["nxf:confirm:abcd1234", "nxf:cancel:abcd1234"]
    iid = await fake.click(sent.id, "nxf:confirm:abcd1234", alice)
    event = await inbox.next()
    assert (event.message, event.sender_id, event.chat_id) == ("/confirm abcd1234", alice, general)
    assert event.external_id == f"interaction:{iid}"
    await fake.wait_for(lambda: len(fake.callbacks) == 1)
    assert fake.callbacks[0]["type"] == 6  # acknowledged (deferred update)
    await fake.click(sent.id, "nxf:cancel:abcd1234", alice)
    assert (await inbox.next()).message == "/cancel abcd1234"


async def test_panel_embed_buttons_press(fake: FakeDiscord, bot: DiscordConnector) -> None:
    inbox = Inbox(bot)
    bob = fake.add_user("bob")
    chat = fake.dm_channel_id(bob)
    buttons = (ButtonSpec(label="Refresh", action="refresh"),)
    await bot.send(
        PanelSnapshotOut(
            channel="discord",
            chat_id=chat,
            panel_id="p1",
            title="CI",
            text="green",
            buttons=buttons,
        )
    )
    (sent,) = await fake.wait_sent(1)
    assert sent.embeds[0]["description"] == "green"
    await fake.click(sent.id, "nxf:press:refresh", bob)
    assert (await inbox.next()).message == "/press refresh"


async def test_patch_review_and_file_out(
    fake: FakeDiscord, bot: DiscordConnector, tmp_path: Path
) -> None:
    general = fake.channels["general"]
    diff = "--- a/x\n+++ b/x\n@@ -1 +1 @@\n-old\n+new\n"
    await bot.send(
        PatchReviewOut(channel="discord", chat_id=general, patch_id="p7", title="fix", diff=diff)
    )
    report = tmp_path / "report.txt"
    report.write_text("all good")
    await bot.send(FileOut(channel="discord", chat_id=general, path=str(report), caption="Report"))
    patch, file = await fake.wait_sent(2)
    assert patch.embeds[0]["description"].startswith("```diff\n--- a/x")
    assert (file.content, file.files) == ("Report", [("report.txt", b"all good")])
    with pytest.raises(DeliveryError) as missing:
        await bot.send(FileOut(channel="discord", chat_id=general, path=str(tmp_path / "nope")))
    assert missing.value.retryable is False


async def test_long_rate_limit_becomes_retry_after(
    fake: FakeDiscord, bot: DiscordConnector
) -> None:
    fake.fail(Failure(429, retry_after=120.0))
    with pytest.raises(DeliveryError) as caught:
        await bot.send(text_to(fake.channels["general"], "hi"))
    assert caught.value.retryable is True
    assert caught.value.retry_after_s == 120.0
    assert fake.sent == []


async def test_short_rate_limit_is_waited_out_once(
    fake: FakeDiscord, bot: DiscordConnector
) -> None:
    fake.fail(Failure(429, retry_after=0.05))
    await bot.send(text_to(fake.channels["general"], "hi"))
    assert [m.content for m in fake.sent] == ["hi"]


@pytest.mark.parametrize(("status", "retryable"), [(403, False), (404, False), (503, True)])
async def test_http_errors_map_to_delivery_errors(
    fake: FakeDiscord, bot: DiscordConnector, status: int, retryable: bool
) -> None:
    fake.fail(Failure(status))
    with pytest.raises(DeliveryError) as caught:
        await bot.send(text_to(fake.channels["general"], "hi"))
    assert caught.value.retryable is retryable
    assert str(status) in caught.value.reason


async def test_retry_after_partial_delivery_sends_each_part_once(
    fake: FakeDiscord, bot: DiscordConnector
) -> None:
    out = text_to(fake.channels["general"], "\n".join(f"{i:02d} " + "y" * 300 for i in range(15)))
    fake.fail(Failure(503, after=1))  # the second part fails
    with pytest.raises(DeliveryError):
        await bot.send(out)
    await bot.send(out)  # the outbox's retry
    assert len(fake.sent) == 3
    assert "\n".join(m.content for m in fake.sent) == out.text


async def test_gateway_drop_resumes_and_replays(fake: FakeDiscord, bot: DiscordConnector) -> None:
    inbox = Inbox(bot)
    alice = fake.add_user("alice")
    await fake.drop()
    await fake.message("general", alice, "while away", mention_bot=True)  # kept for RESUME
    assert (await inbox.next()).message == "while away"
    await fake.wait_for(lambda: fake.resumes == 1)
    await fake.message("general", alice, "after", mention_bot=True)
    assert (await inbox.next()).message == "after"
    assert fake.identifies == 1


async def test_invalidated_session_identifies_again(
    fake: FakeDiscord, bot: DiscordConnector
) -> None:
    inbox = Inbox(bot)
    alice = fake.add_user("alice")
    fake.invalidate_session()
    await fake.drop()
    # discord.py waits 5 s before identifying again (Discord's identify rate limit).
    await fake.wait_for(lambda: fake.identifies == 2, within_s=10)
    await fake.message("general", alice, "fresh session", mention_bot=True)
    assert (await inbox.next()).message == "fresh session"


async def test_bad_token_stops_quietly_and_sends_fail_retryably(
    fake: FakeDiscord, make_bot: MakeBot
) -> None:
    bot = await make_bot(ready=False, bot_token="wrong")
    with pytest.raises(TimeoutError):
        await bot.wait_ready(0.5)
    with pytest.raises(DeliveryError) as caught:
        await bot.send(text_to(fake.channels["general"], "hi"))
    assert caught.value.retryable is True
    assert fake.identifies == 0


async def test_discord_unreachable_at_start_connects_when_back(
    fake: FakeDiscord, make_bot: MakeBot
) -> None:
    await fake.stop()  # the port stays known; nothing listens on it now
    bot = await make_bot(ready=False)
    with pytest.raises(DeliveryError) as caught:
        await bot.send(text_to(fake.channels["general"], "too early"))
    assert caught.value.retryable is True
    await asyncio.sleep(0.2)  # the first login attempt fails and backs off
    await fake.start()
    await bot.wait_ready(5)
    await bot.send(text_to(fake.channels["general"], "now"))
    assert [m.content for m in fake.sent] == ["now"]


@pytest.mark.parametrize("after_s", [0.0, 0.005, 0.02])
async def test_stop_while_logging_in_is_clean(
    fake: FakeDiscord, make_bot: MakeBot, after_s: float
) -> None:
    bot = await make_bot(ready=False)
    await asyncio.sleep(after_s)
    await bot.stop()
    with pytest.raises(DeliveryError):
        await bot.send(text_to(fake.channels["general"], "hi"))


async def test_button_press_without_role_is_refused(fake: FakeDiscord, make_bot: MakeBot) -> None:
    bot = await make_bot(allowed_roles=["dev"])
    inbox = Inbox(bot)
    guest, dev = fake.add_user("guest"), fake.add_user("dev", ("dev",))
    general = fake.channels["general"]
    buttons = (ButtonSpec(label="Deploy", action="deploy"),)
    await bot.send(
        PanelSnapshotOut(
            channel="discord", chat_id=general, panel_id="p", title="T", text="x", buttons=buttons
        )
    )
    (sent,) = await fake.wait_sent(1)
    await fake.click(sent.id, "nxf:press:deploy", guest)
    await fake.wait_for(lambda: len(fake.callbacks) == 1)
    refusal = fake.callbacks[0]
    assert (refusal["type"], refusal["data"]["flags"]) == (4, 64)  # an ephemeral message
    await fake.click(sent.id, "nxf:press:deploy", dev)
    assert (await inbox.next()).sender_id == dev
