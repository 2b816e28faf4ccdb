"""The email channel against real servers on loopback: an ``aiosmtpd`` SMTP server that
collects what is sent, and :class:`~nexflow.testing.fake_imap.FakeImap` for the mailbox,
driven by ``imaplib`` through a real gateway."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncGenerator
from pathlib import Path

import pytest
import yaml
from email_helpers import BOT, Collect, section
from email_helpers import raw as mail

from connectors.email.config import EmailConfig
from connectors.email.connector import EmailConnector
from connectors.email.mail import html_to_text, parse, strip_quotes
from nexflow.bus.events import TextOut
from nexflow.config.errors import ConfigError
from nexflow.gateway.connector import DeliveryError
from nexflow.testing.fake_imap import FakeImap
from nexflow.testing.fake_llm import Reply
from nexflow.testing.harness import GatewayHarness, free_port
from nexflow.testing.waiting import wait_until


async def test_thread_reply_pairing_and_exactly_once(
    tmp_path: Path, smtp: tuple[Collect, int]
) -> None:
    collected, smtp_port = smtp
    async with FakeImap(username=BOT) as imap:
        config = tmp_path / "config.yml"
        config.write_text(
            yaml.safe_dump(
                {
                    "connectors": {"email": section(imap, smtp_port)},
                    "security": {"channels": {"email": {"policy": "pairing"}}},
                }
            )
        )
        imap.append(
            mail("Alice <Alice@Example.com>", "Weekly report", "Summarise it\n", "<m1@example.com>")
        )
        gw = GatewayHarness(tmp_path / "home", config_file=config, client="openai")
        gw.llm.push(Reply(text="Here is the summary."))  # before the first poll can run
        async with gw:
            await wait_until(lambda: len(collected.mails) >= 1)
            reply = collected.mails[0]
            assert reply["To"] == "alice@example.com"
            assert reply["From"] == BOT
            assert reply["Subject"] == "Re: Weekly report"
            assert reply["In-Reply-To"] == "<m1@example.com>"
            assert "<m1@example.com>" in reply["References"]
            assert reply.get_content().strip() == "Here is the summary."
            prompt = str(gw.llm.requests[-1]["messages"])
            assert "Summarise it" in prompt

            # A stranger gets a pairing code by mail, in their own thread.
            imap.append(mail("mallory@evil.test", "hello", "let me in", "<s1@evil.test>"))
            await wait_until(lambda: len(collected.mails) >= 2)
            pairing = collected.mails[1]
            assert pairing["To"] == "mallory@evil.test"
            assert pairing["In-Reply-To"] == "<s1@evil.test>"
            assert pairing["Subject"] == "Re: hello"
            assert gw.app is not None
            pending = await gw.app.storage.pairing_requests()
            codes = [p.code for p in pending]
            assert any(code in pairing.get_content() for code in codes)
            assert len(gw.llm.requests) == 1  # the stranger reached no model
            uid_file = tmp_path / "home" / "email" / f"{BOT}.uid"
            await wait_until(lambda: uid_file.exists() and uid_file.read_text().strip() == "2")

        # A second start on the same home reads nothing again and answers nothing again.
        searches = imap.searches
        async with GatewayHarness(tmp_path / "home", config_file=config, client="openai") as gw:
            await wait_until(lambda: imap.searches >= searches + 1 and imap.idles >= 2)
            await asyncio.sleep(0.3)
            assert len(collected.mails) == 2
            assert gw.llm.requests == []

            # Alice answers in the thread: the same session, replied to in the same thread.
            gw.llm.push(Reply(text="Second answer."))
            imap.append(
                mail(
                    "alice@example.com",
                    "Re: Re: Weekly report",
                    "And the totals?\n\nOn Mon, Bot wrote:\n> Here is the summary.\n",
                    "<m2@example.com>",
                    In_Reply_To="<r1@example.com>",
                    References="<m1@example.com> <r1@example.com>",
                )
            )
            await wait_until(lambda: len(collected.mails) >= 3)
            again = collected.mails[2]
            assert again["To"] == "alice@example.com"
            assert again["Subject"] == "Re: Weekly report"
            assert again["In-Reply-To"] == "<m2@example.com>"
            assert again["References"].split()[0] == "<m1@example.com>"
            messages = gw.llm.requests[-1]["messages"]
            user_texts = [m["content"] for m in messages if m["role"] == "user"]
            assert any("And the totals?" in str(t) for t in user_texts)
            assert not any("> Here is the summary" in str(t) for t in user_texts)
            assert "Summarise it" in str(messages)  # the thread's history: one session


def test_parse_thread_html_and_quotes() -> None:
    raw = (
        b"From: Bob <BOB@example.org>\r\nSubject: Re: plan\r\nMessage-ID: <c@x>\r\n"
        b"In-Reply-To: <b@x>\r\nReferences: <a@x> <b@x>\r\nMIME-Version: 1.0\r\n"
        b"Content-Type: text/html; charset=utf-8\r\n\r\n"
        b"<html><head><style>p{}</style></head><body><p>Yes &amp; go</p>"
        b"<blockquote>old text</blockquote><script>x()</script></body></html>\r\n"
    )
    parsed = parse(raw, "<fallback@x>")
    assert parsed.sender == "bob@example.org"
    assert parsed.thread == "<a@x>"
    assert parsed.references == ("<a@x>", "<b@x>")
    assert parsed.text == "Yes & go"
    assert html_to_text("<div>a<br>b</div>") == "a\nb"
    assert strip_quotes("new\nOn Tue, 1 Jan, Bob wrote:\n> old\n>> older") == "new"
    own = parse(b"From: a@x\r\nSubject: s\r\n\r\nhi\r\n", "<uid-1@x>")
    assert (own.message_id, own.thread) == ("<uid-1@x>", "<uid-1@x>")


def test_config_errors_name_the_key() -> None:
    good = {
        "address": BOT,
        "imap": {"host": "h", "username": "u", "password": "p"},
        "smtp": {"host": "h"},
    }
    config = EmailConfig.from_section({**good, "allow": ["Alice@Example.com", "@example.org"]})
    assert config.imap.effective_port == 993 and config.smtp.effective_port == 587
    assert config.allows("alice@example.com") and config.allows("x@example.org")
    assert not config.allows("x@example.com")
    with pytest.raises(ConfigError) as bad:
        EmailConfig.from_section({**good, "allow": ["not an address"], "bogus": 1})
    text = bad.value.render()
    assert "connectors.email.allow" in text and "connectors.email.bogus" in text


async def test_smtp_errors_are_classified(tmp_path: Path, smtp: tuple[Collect, int]) -> None:
    collected, port = smtp
    async with FakeImap(username=BOT) as imap:
        config = EmailConfig.from_section(section(imap, port))
        connector = EmailConnector(config, tmp_path / "email")
        await connector.start()
        try:
            out = TextOut(channel="email", chat_id="<unknown@x>", text="hi")
            with pytest.raises(DeliveryError) as unknown:
                await connector.send(out)
            assert unknown.value.retryable is False

            imap.append(mail("alice@example.com", "s", "hi", "<t1@x>"))
            events = connector.events()
            assert isinstance(events, AsyncGenerator)
            event = await asyncio.wait_for(anext(events), 10)
            assert event.metadata["untrusted"] is True
            assert event.metadata["allowlisted"] is True
            assert event.chat_id == "<t1@x>" and event.external_id == "<t1@x>"
            # Someone else writing into Alice's thread gets a chat of their own.
            imap.append(mail("eve@x.test", "Re: s", "me too", "<t2@x>", References="<t1@x>"))
            other = await asyncio.wait_for(anext(events), 10)
            assert other.chat_id == "<t1@x>#eve@x.test"
            assert other.metadata["allowlisted"] is False
            reply = TextOut(channel="email", chat_id=event.chat_id, text="ok")
            await connector.send(reply)
            assert collected.mails[-1]["To"] == "alice@example.com"
            collected.refuse = "550 no such user"
            with pytest.raises(DeliveryError) as final:
                await connector.send(reply)
            assert final.value.retryable is False
            collected.refuse = "451 try later"
            with pytest.raises(DeliveryError) as later:
                await connector.send(reply)
            assert later.value.retryable is True
            await events.aclose()
        finally:
            await connector.stop()
        unreachable = EmailConfig.from_section(section(imap, free_port()))
        closed = EmailConnector(unreachable, tmp_path / "other")
        await closed.start()
        try:
            with pytest.raises(DeliveryError) as refused:
                closed._threads["<t1@x>"] = {
                    "address": "a@x",
                    "subject": "s",
                    "message_id": "<t1@x>",
                }
                await closed.send(reply)
            assert refused.value.retryable is True
        finally:
            await closed.stop()
