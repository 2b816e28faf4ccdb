"""Reading the mailbox with the standard library's ``imaplib``, in a worker thread:
connect (implicit TLS, STARTTLS or plain), log in, open the mailbox read-only and fetch
the messages above a UID (``BODY.PEEK[]``: nothing is marked read). A message larger
than ``max_mail_bytes`` is fetched as its header only.

:func:`failure` turns what the connection raised into the sentence a person reads (in
the log and in ``nexflow doctor``): bad credentials, unreachable, a TLS error; never a
secret.
"""

from __future__ import annotations

import contextlib
import imaplib
import re
import smtplib
import socket
import ssl
from dataclasses import dataclass

from connectors.email.config import ImapConfig
from connectors.email.idle import ImapError

_FETCHED = re.compile(rb"UID (\d+)")
_SIZE = re.compile(rb"RFC822\.SIZE (\d+)")

# What a mailbox connection can raise besides a bug (ssl.SSLError is an OSError).
MAILBOX_ERRORS: tuple[type[BaseException], ...] = (
    OSError,
    EOFError,
    imaplib.IMAP4.error,
    smtplib.SMTPException,
    ImapError,
)


@dataclass(frozen=True, slots=True)
class Fetched:
    uid: int
    raw: bytes
    size: int
    complete: bool  # False: only the header (the mail is over max_mail_bytes)


def connect(config: ImapConfig) -> imaplib.IMAP4:
    port = config.effective_port
    if config.ssl is True:
        return imaplib.IMAP4_SSL(
            config.host, port, ssl_context=ssl.create_default_context(), timeout=config.timeout_s
        )
    client = imaplib.IMAP4(config.host, port, timeout=config.timeout_s)
    if config.ssl == "starttls":
        client.starttls(ssl.create_default_context())
    return client


def login_and_select(client: imaplib.IMAP4, config: ImapConfig) -> int:
    """Log in and open the mailbox read-only; return how many messages it holds."""
    client.login(config.username, config.password.get_secret_value())
    status, data = client.select(config.mailbox, readonly=True)
    if status != "OK":
        detail = b" ".join(d for d in data if isinstance(d, bytes)).decode(errors="replace")
        raise imaplib.IMAP4.error(f"cannot open the mailbox {config.mailbox!r}: {detail}")
    first = data[0] if data else b"0"
    return int(first) if isinstance(first, bytes) and first.isdigit() else 0


def fetch_new(config: ImapConfig, after: int, max_mail_bytes: int) -> list[Fetched]:
    """The messages whose UID is above ``after``, oldest first."""
    client = connect(config)
    try:
        login_and_select(client, config)
        status, data = client.uid("SEARCH", f"UID {after + 1}:*")
        if status != "OK":
            raise imaplib.IMAP4.error("UID SEARCH failed")
        uids = sorted(int(n) for n in b" ".join(d for d in data if d).split())
        return [_fetch_one(client, uid, max_mail_bytes) for uid in uids if uid > after]
    finally:  # "n:*" always matches the last message, hence ``uid > after``
        with contextlib.suppress(*MAILBOX_ERRORS):
            client.logout()


def _fetch_one(client: imaplib.IMAP4, uid: int, max_mail_bytes: int) -> Fetched:
    status, parts = client.uid("FETCH", str(uid), "(RFC822.SIZE)")
    found = _SIZE.search(b" ".join(p if isinstance(p, bytes) else p[0] for p in parts if p))
    if status != "OK" or found is None:
        raise imaplib.IMAP4.error(f"UID FETCH {uid} (RFC822.SIZE) failed")
    size = int(found.group(1))
    complete = size <= max_mail_bytes
    item = "(BODY.PEEK[])" if complete else "(BODY.PEEK[HEADER])"
    status, parts = client.uid("FETCH", str(uid), item)
    if status != "OK":
        raise imaplib.IMAP4.error(f"UID FETCH {uid} failed")
    for part in parts:
        if isinstance(part, tuple) and _FETCHED.search(part[0]):
            return Fetched(uid, bytes(part[1]), size, complete)
    raise imaplib.IMAP4.error(f"UID FETCH {uid} returned no message")


def failure(exc: BaseException, host: str, port: int) -> str:
    """What went wrong, for a person; no secret is ever in it."""
    where = f"{host}:{port}"
    text = str(exc)
    if isinstance(exc, smtplib.SMTPAuthenticationError) or (
        isinstance(exc, (imaplib.IMAP4.error, ImapError))
        and re.search(r"AUTHENTICATIONFAILED|LOGIN|credentials|password", text, re.I)
    ):
        return "bad credentials: the server refused the username or password"
    if isinstance(exc, ssl.SSLCertVerificationError):
        return f"TLS error at {where}: the certificate was not accepted ({exc.verify_message})"
    if isinstance(exc, ssl.SSLError):
        return f"TLS error at {where}: {exc.reason or type(exc).__name__}"
    if isinstance(exc, ConnectionRefusedError):
        return f"unreachable: nothing listens at {where} (connection refused)"
    if isinstance(exc, socket.gaierror):
        return f"unreachable: the host {host!r} is not known"
    if isinstance(exc, TimeoutError):
        return f"unreachable: {where} did not answer in time"
    if isinstance(exc, (OSError, EOFError)):
        return f"unreachable: {where}: {type(exc).__name__} {text}".rstrip()
    if isinstance(exc, smtplib.SMTPResponseException):
        reply = exc.smtp_error.decode(errors="replace") if isinstance(exc.smtp_error, bytes) else ""
        return f"the server answered {exc.smtp_code} {reply}".rstrip()
    return f"{type(exc).__name__}: {text}"
