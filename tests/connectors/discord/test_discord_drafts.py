"""Streamed replies on Discord: a draft message edited in place, then the final reply,
with the real discord.py client against the fake Discord."""

import time
from collections.abc import Awaitable, Callable

import aiohttp
import pytest

from connectors.discord.connector import DiscordConnector
from connectors.discord.render import split_text
from nexflow.bus.events import ConfirmationOut, TextOut
from nexflow.gateway.connector import DeliveryError
from nexflow.testing.fake_discord import Failure, FakeDiscord

MakeBot = Callable[..., Awaitable[DiscordConnector]]  # the make_bot fixture (conftest.py)


def text_to(chat_id: str, text: str) -> TextOut:
    return TextOut(channel="discord", chat_id=chat_id, text=text)


def long_text(lines: int = 60) -> str:
    return "\n".join(f"line {i:04d} " + "x" * 80 for i in range(lines))  # ~5,400 characters


def shown(fake: FakeDiscord) -> list[str]:
    """What the chat shows now, top to bottom."""
    return [m.content for m in fake.sent if not m.deleted]


async def test_draft_is_edited_into_the_final_reply(fake: FakeDiscord, make_bot: MakeBot) -> None:
    bot = await make_bot(stream_edit_interval_s=0)
    general = fake.channels["general"]
    await bot.draft(general, "Thinking")
    await bot.draft(general, "Thinking about **it**")
    await bot.send(text_to(general, "Final **answer**"))
    [sent] = fake.sent
    assert sent.content == "Final **answer**"
    assert sent.edits == ["Thinking about **it**", "Final **answer**"]


async def test_draft_edits_are_rate_limited(fake: FakeDiscord, make_bot: MakeBot) -> None:
    bot = await make_bot(stream_edit_interval_s=60)
    chat = fake.channels["general"]
    for text in ("One", "One two", "One two three"):
        await bot.draft(chat, text)
    [sent] = fake.sent
    assert (sent.content, sent.edits) == ("One", [])  # the updates within 60 s are skipped
    await bot.send(text_to(chat, "One two three four"))
    assert (sent.content, sent.edits) == ("One two three four", ["One two three four"])


async def test_long_stream_continues_in_new_messages_in_order(
    fake: FakeDiscord, make_bot: MakeBot
) -> None:
    bot = await make_bot(stream_edit_interval_s=0)
    chat = fake.channels["general"]
    text = long_text()
    for end in range(40, len(text), 97):
        await bot.draft(chat, text[:end])
    await bot.send(text_to(chat, text))
    parts = split_text(text)
    assert len(parts) == 3
    assert shown(fake) == parts  # posted in order; the final text in full
    assert all(len(m.content) <= 2000 and m.edits for m in fake.sent)
    assert fake.deleted == []
    assert [int(m.id) for m in fake.sent] == sorted(int(m.id) for m in fake.sent)


async def test_final_reply_shorter_than_the_draft_deletes_the_rest(
    fake: FakeDiscord, make_bot: MakeBot
) -> None:
    bot = await make_bot(stream_edit_interval_s=0)
    chat = fake.channels["general"]
    await bot.draft(chat, long_text())
    assert len(fake.sent) == 3
    await bot.send(text_to(chat, "Short after all."))
    assert shown(fake) == ["Short after all."]
    assert fake.deleted == [m.id for m in reversed(fake.sent[1:])]  # from the bottom up


async def test_other_output_lets_the_latest_draft_stand(
    fake: FakeDiscord, make_bot: MakeBot
) -> None:
    bot = await make_bot(stream_edit_interval_s=60)
    chat = fake.channels["general"]
    await bot.draft(chat, "Let me")
    await bot.draft(chat, "Let me run that for you.")  # within the interval: not shown yet
    await bot.send(
        ConfirmationOut(
            channel="discord",
            chat_id=chat,
            confirmation_id="c1",
            title="Run it?",
            detail="make test",
            expires_at=time.time() + 60,
        )
    )
    draft, ask = fake.sent
    assert draft.content == "Let me run that for you."
    assert ask.embeds[0]["title"] == "Run it?"
    await bot.send(text_to(chat, "Done."))  # the draft is over: a new message
    assert shown(fake)[-1] == "Done." and len(fake.sent) == 3


async def test_retry_after_a_failed_finish_posts_each_part_once(
    fake: FakeDiscord, make_bot: MakeBot
) -> None:
    bot = await make_bot(stream_edit_interval_s=0)
    chat = fake.channels["general"]
    await bot.draft(chat, "line 0000")
    fake.fail(Failure(503, method="POST", path="/messages", after=1))  # the third part fails
    out = text_to(chat, long_text())
    with pytest.raises(DeliveryError) as caught:
        await bot.send(out)
    assert caught.value.retryable
    await bot.send(out)  # the outbox's retry
    assert shown(fake) == split_text(out.text)


async def test_draft_deleted_meanwhile_still_gets_the_reply(
    fake: FakeDiscord, make_bot: MakeBot
) -> None:
    bot = await make_bot(stream_edit_interval_s=0)
    chat = fake.channels["general"]
    await bot.draft(chat, "Working")
    fake.fail(Failure(404, method="PATCH", path="/messages"))
    await bot.send(text_to(chat, "Here it is"))
    assert [m.content for m in fake.sent] == ["Working", "Here it is"]


async def test_streaming_off_sends_only_the_final_reply(
    fake: FakeDiscord, make_bot: MakeBot
) -> None:
    bot = await make_bot(stream_edits=False)
    chat = fake.channels["general"]
    await bot.draft(chat, "Thinking")
    await bot.send(text_to(chat, "Answer"))
    assert [(m.content, m.edits) for m in fake.sent] == [("Answer", [])]


async def test_draft_before_login_is_skipped(fake: FakeDiscord, make_bot: MakeBot) -> None:
    bot: DiscordConnector = await make_bot(ready=False, bot_token="wrong")
    await bot.draft(fake.channels["general"], "Thinking")
    assert fake.sent == []


async def test_fake_message_edits_follow_discord(fake: FakeDiscord) -> None:
    """PATCH and DELETE on the fake answer as Discord does."""
    general = fake.channels["general"]
    alice = fake.add_user("alice")
    theirs = await fake.message("general", alice, "hello")
    headers = {"Authorization": f"Bot {fake.token}"}
    messages = f"{fake.api_base}/channels/{general}/messages"
    async with aiohttp.ClientSession(headers=headers) as http:
        async with http.post(messages, json={"content": "draft"}) as created:
            mine = (await created.json())["id"]
        async with http.post(messages, json={"content": "y" * 2001}) as too_long:
            assert (too_long.status, (await too_long.json())["code"]) == (400, 50035)
        async with http.post(messages, json={"content": ""}) as empty:
            assert (empty.status, (await empty.json())["code"]) == (400, 50006)
        async with http.patch(f"{messages}/{mine}", json={"content": "final"}) as edited:
            body = await edited.json()
            assert (body["content"], body["edited_timestamp"] is not None) == ("final", True)
        async with http.patch(f"{messages}/{mine}", json={"content": "z" * 2001}) as refused:
            assert (refused.status, (await refused.json())["code"]) == (400, 50035)
        async with http.patch(f"{messages}/{theirs}", json={"content": "x"}) as forbidden:
            assert (forbidden.status, (await forbidden.json())["code"]) == (403, 50005)
        other = fake.channels["dev"]
        wrong = f"{fake.api_base}/channels/{other}/messages/{mine}"
        async with http.patch(wrong, json={"content": "x"}) as unknown:
            assert (unknown.status, (await unknown.json())["code"]) == (404, 10008)
        async with http.delete(f"{messages}/{mine}") as deleted:
            assert deleted.status == 204
    [sent] = fake.sent
    assert (sent.content, sent.edits, sent.deleted) == ("final", ["final"], True)
    assert fake.deleted == [mine]
