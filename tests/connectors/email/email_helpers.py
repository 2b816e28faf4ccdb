"""Shared by the email tests: an ``aiosmtpd`` sink that keeps what is sent (optionally
with a login), mails built with the standard library, a config section pointing at the
fakes, and a wait that polls a condition."""

from __future__ import annotations

import asyncio
import contextlib
import email
import email.policy
from collections.abc import AsyncIterator, Iterator
from email.message import EmailMessage
from typing import Any

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, AuthResult, Envelope, LoginPassword, Session

from connectors.email.connector import EmailConnector
from nexflow.bus.events import InboundEvent
from nexflow.testing.fake_imap import FakeImap
from nexflow.testing.harness import free_port

BOT = "bot@example.com"


class Collect:
    """An aiosmtpd handler that keeps every message; ``refuse`` answers RCPT with it."""

    def __init__(self) -> None:
        self.mails: list[EmailMessage] = []
        self.recipients: list[str] = []
        self.refuse: str | None = None

    async def handle_RCPT(
        self, server: SMTP, session: Session, envelope: Envelope, address: str, options: list[str]
    ) -> str:
        if self.refuse:
            return self.refuse
        envelope.rcpt_tos.append(address)
        self.recipients.append(address)
        return "250 OK"

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        raw = envelope.original_content or b""
        msg = email.message_from_bytes(raw, policy=email.policy.default)
        assert isinstance(msg, EmailMessage)
        self.mails.append(msg)
        return "250 Message accepted"


class Login:
    """An aiosmtpd authenticator that knows one username and password."""

    def __init__(self, username: str, password: str) -> None:
        self.username, self.password = username.encode(), password.encode()

    def __call__(
        self, server: SMTP, session: Session, envelope: Envelope, mechanism: str, data: Any
    ) -> AuthResult:
        ok = (
            isinstance(data, LoginPassword)
            and data.login == self.username
            and data.password == self.password
        )
        return AuthResult(success=ok, handled=False)


@contextlib.contextmanager
def smtp_sink(login: Login | None = None) -> Iterator[tuple[Collect, int]]:
    handler = Collect()
    port = free_port()
    extra: dict[str, Any] = {"authenticator": login, "auth_require_tls": False} if login else {}
    controller = Controller(handler, hostname="127.0.0.1", port=port, **extra)
    controller.start()
    try:
        yield handler, port
    finally:
        controller.stop()


def mail(sender: str, subject: str, body: str, message_id: str, **headers: str) -> EmailMessage:
    msg = EmailMessage()
    msg["From"] = sender
    msg["To"] = BOT
    msg["Subject"] = subject
    msg["Message-ID"] = message_id
    for name, value in headers.items():
        msg[name.replace("_", "-")] = value
    msg.set_content(body)
    return msg


def raw(sender: str, subject: str, body: str, message_id: str, **headers: str) -> bytes:
    return mail(sender, subject, body, message_id, **headers).as_bytes()


def section(imap: FakeImap, smtp_port: int, **extra: Any) -> dict[str, Any]:
    return {
        "address": BOT,
        "imap": {
            "host": "127.0.0.1",
            "port": imap.port,
            "username": imap.username,
            "password": imap.password,
            "ssl": False,
        },
        "smtp": {"host": "127.0.0.1", "port": smtp_port, "ssl": False},
        "allow": ["alice@example.com"],
        "poll_s": 0.1,
        **extra,
    }


@contextlib.asynccontextmanager
async def running(connector: EmailConnector) -> AsyncIterator[asyncio.Queue[InboundEvent]]:
    """The connector started, its events drained into a queue as the gateway does."""
    received: asyncio.Queue[InboundEvent] = asyncio.Queue()

    async def drain() -> None:
        async for event in connector.events():
            await received.put(event)

    await connector.start()
    pump = asyncio.create_task(drain())
    try:
        yield received
    finally:
        await connector.stop()
        pump.cancel()
        await asyncio.gather(pump, return_exceptions=True)
