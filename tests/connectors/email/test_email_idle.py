"""IMAP IDLE (RFC 2177) against the fake server: a mail appended while the connector
idles is read at once, IDLE is re-issued before the server's cut-off, and a server
without IDLE is polled. A mailbox that fails is retried, and says why."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

from email_helpers import raw, running, section

from connectors.email.config import EmailConfig
from connectors.email.connector import EmailConnector
from nexflow.testing.fake_imap import FakeImap
from nexflow.testing.harness import free_port
from nexflow.testing.waiting import wait_until


async def test_a_mail_arriving_during_idle_is_read_at_once(tmp_path: Path) -> None:
    async with FakeImap() as imap:
        config = EmailConfig.from_section(section(imap, free_port(), poll_s=60))
        connector = EmailConnector(config, tmp_path / "email")
        async with running(connector) as received:
            await wait_until(lambda: imap.idles >= 1 and imap.searches >= 1)
            assert connector.idling
            await asyncio.sleep(0.2)  # well inside IDLE now
            searches = imap.searches
            started = time.monotonic()
            imap.append(raw("alice@example.com", "news", "pushed, not polled", "<p1@x>"))
            event = await asyncio.wait_for(received.get(), 5)
            took = time.monotonic() - started
            assert event.message == "pushed, not polled"
            assert took < 2, f"{took:.2f} s: the mail waited for a poll (poll_s is 60)"
            assert imap.pushes >= 1 and imap.searches == searches + 1
            # A mail that lands between two IDLEs is not lost either.
            imap.append(raw("alice@example.com", "more", "second", "<p2@x>"))
            imap.append(raw("alice@example.com", "more", "third", "<p3@x>"))
            got = [(await asyncio.wait_for(received.get(), 5)).message for _ in range(2)]
            assert got == ["second", "third"]


async def test_idle_is_reissued_before_the_server_cut_off(tmp_path: Path) -> None:
    async with FakeImap() as imap:
        config = EmailConfig.from_section(section(imap, free_port(), poll_s=60, idle_s=0.2))
        connector = EmailConnector(config, tmp_path / "email")
        async with running(connector) as received:
            await wait_until(lambda: imap.idles >= 4, within=5)
            # one IDLE session throughout (a fetch may be between its login and search)
            assert imap.logins - imap.searches in (1, 2)
            imap.append(raw("alice@example.com", "s", "still watched", "<r1@x>"))
            assert (await asyncio.wait_for(received.get(), 5)).message == "still watched"


async def test_a_server_without_idle_is_polled(tmp_path: Path) -> None:
    async with FakeImap(idle=False) as imap:
        config = EmailConfig.from_section(section(imap, free_port(), poll_s=0.2))
        connector = EmailConnector(config, tmp_path / "email")
        async with running(connector) as received:
            await wait_until(lambda: imap.searches >= 3, within=5)
            assert imap.idles == 0 and not connector.idling
            imap.append(raw("alice@example.com", "s", "polled", "<q1@x>"))
            assert (await asyncio.wait_for(received.get(), 5)).message == "polled"


async def test_idle_can_be_turned_off(tmp_path: Path) -> None:
    async with FakeImap() as imap:
        config = EmailConfig.from_section(section(imap, free_port(), poll_s=0.2, idle=False))
        connector = EmailConnector(config, tmp_path / "email")
        async with running(connector):
            await wait_until(lambda: imap.searches >= 2, within=5)
            assert imap.idles == 0


async def test_a_failing_mailbox_is_retried_with_backoff_and_reported(tmp_path: Path) -> None:
    async with FakeImap(fail_logins=True) as imap:
        config = EmailConfig.from_section(section(imap, free_port(), poll_s=0.1))
        connector = EmailConnector(config, tmp_path / "email")
        async with running(connector) as received:
            await wait_until(lambda: connector.last_error is not None, within=5)
            assert connector.last_error is not None
            assert "bad credentials" in connector.last_error
            assert imap.password not in connector.last_error
            await asyncio.sleep(1.2)
            # Backing off: 1 s after the first failure, not every poll_s (0.1 s).
            assert 1 <= connector.failures <= 2
            imap.fail_logins = False
            imap.append(raw("alice@example.com", "s", "back again", "<b1@x>"))
            event = await asyncio.wait_for(received.get(), 10)
            assert event.message == "back again"
            assert connector.last_error is None and connector.failures == 0

    closed = EmailConfig.from_section(
        section(imap, free_port())
        | {
            "imap": {
                "host": "127.0.0.1",
                "port": free_port(),
                "username": "u",
                "password": "p",
                "ssl": False,
            }
        }
    )
    connector = EmailConnector(closed, tmp_path / "other")
    async with running(connector):
        await wait_until(lambda: connector.last_error is not None, within=5)
        assert connector.last_error is not None
        assert connector.last_error.startswith("unreachable")
