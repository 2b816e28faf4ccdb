"""The email connector: polls an IMAP mailbox, replies over SMTP in the same thread.

Inbound: every ``poll_s`` a worker thread (``asyncio.to_thread``) logs in with the
standard library's ``imaplib``, selects the mailbox and fetches the messages whose UID is
above the last one seen (``BODY.PEEK[]``, so nothing is marked read). Each becomes an
:class:`InboundEvent` whose ``chat_id`` is the thread's root Message-ID (one mail thread,
one session) and whose ``external_id`` is the mail's Message-ID (the inbox drops a
duplicate). The last UID is written to ``<state_dir>/<account>.uid`` only after the
consumer of :meth:`events` has taken the event (it is then in the durable inbox), so a
crash re-delivers rather than loses a mail, and the inbox drops the repeat. IMAP IDLE is
not used (polling only); a mailbox that fails is retried with exponential backoff.

Outbound: ``send`` mails :func:`~nexflow.bus.events.as_text` of the message with
``smtplib`` (in a thread) to the thread's sender, with ``In-Reply-To``/``References`` and
``Subject: Re: …``. Who and what a thread is (address, subject, last Message-ID) is kept
in ``<state_dir>/<account>.threads.json`` so a restarted gateway can still reply.
SMTP 4xx and connection errors are retryable, 5xx are final (:class:`DeliveryError`).
"""

from __future__ import annotations

import asyncio
import contextlib
import imaplib
import json
import os
import re
import smtplib
import ssl
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import structlog

from connectors.email.config import EmailConfig
from connectors.email.mail import Parsed, build_reply, parse
from connectors.email.manifest import MANIFEST
from nexflow.bus.events import InboundEvent, Outbound, as_text
from nexflow.gateway.connector import ConnectorManifest, DeliveryError, handed_out

log = structlog.get_logger("nexflow.email")

_FETCHED = re.compile(rb"UID (\d+)")
_MAX_THREADS = 5000


class EmailConnector:
    def __init__(self, config: EmailConfig, state_dir: Path, channel: str = "email") -> None:
        self._config = config
        self._dir = state_dir
        self._channel = channel
        self._uid_file = state_dir / f"{config.account}.uid"
        self._threads_file = state_dir / f"{config.account}.threads.json"
        # (event, UID); an event of None only commits its UID (a skipped mail), in order
        self._queue: asyncio.Queue[tuple[InboundEvent | None, int]] = asyncio.Queue(256)
        self._stopped = asyncio.Event()
        self._poller: asyncio.Task[None] | None = None
        self._seen = 0  # the highest UID fetched (in memory)
        self._threads: dict[str, dict[str, Any]] = {}
        self._lock = asyncio.Lock()
        self.polls = 0  # answered polls (tests, health)

    @property
    def manifest(self) -> ConnectorManifest:
        return MANIFEST

    # -- lifecycle ---------------------------------------------------------------------

    async def start(self) -> None:
        self._dir.mkdir(parents=True, exist_ok=True)
        self._seen = self._committed_uid()
        self._threads = self._load_threads()
        self._stopped.clear()
        self._poller = asyncio.create_task(self._poll_loop(), name="nexflow-email")

    async def stop(self) -> None:
        self._stopped.set()
        if self._poller is not None:
            self._poller.cancel()
            await asyncio.gather(self._poller, return_exceptions=True)
            self._poller = None

    async def events(self) -> AsyncIterator[InboundEvent]:
        async with contextlib.aclosing(handed_out(self._queue, self._stopped)) as queued:
            async for event, uid in queued:
                if event is not None:
                    yield event
                # The consumer came back: the event is in the inbox. Commit its UID.
                self._commit_uid(uid)

    # -- receiving ---------------------------------------------------------------------

    async def _poll_loop(self) -> None:
        delay = self._config.poll_s
        while not self._stopped.is_set():
            wait = self._config.poll_s
            try:
                await self._queue.join()  # fetch again only once the last batch is taken
                await self.poll_once()
                delay = self._config.poll_s
            except (OSError, imaplib.IMAP4.error, ssl.SSLError) as exc:
                log.warning("email_poll_failed", error=type(exc).__name__, detail=str(exc))
                delay = min(self._config.backoff_max_s, delay * 2)
                wait = delay
            except Exception:
                log.exception("email_poll_crashed")
                delay = min(self._config.backoff_max_s, delay * 2)
                wait = delay
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(wait):
                    await self._stopped.wait()

    async def poll_once(self) -> None:
        """Fetch the new mail and queue its events (the poll loop calls it)."""
        fetched = await asyncio.to_thread(self._fetch, self._seen)
        self.polls += 1
        for uid, raw in fetched:
            self._seen = max(self._seen, uid)
            await self._queue.put((self._event(uid, raw), uid))

    def _imap(self) -> imaplib.IMAP4:
        imap = self._config.imap
        port = imap.effective_port
        if imap.ssl is True:
            return imaplib.IMAP4_SSL(
                imap.host, port, ssl_context=ssl.create_default_context(), timeout=imap.timeout_s
            )
        client = imaplib.IMAP4(imap.host, port, timeout=imap.timeout_s)
        if imap.ssl == "starttls":
            client.starttls(ssl.create_default_context())
        return client

    def _fetch(self, after: int) -> list[tuple[int, bytes]]:
        """In a worker thread: the (UID, raw message) pairs above ``after``, oldest first."""
        imap = self._config.imap
        client = self._imap()
        try:
            client.login(imap.username, imap.password.get_secret_value())
            status, _ = client.select(imap.mailbox, readonly=True)
            if status != "OK":
                raise imaplib.IMAP4.error(f"cannot select {imap.mailbox}")
            status, data = client.uid("SEARCH", f"UID {after + 1}:*")
            if status != "OK":
                raise imaplib.IMAP4.error("UID SEARCH failed")
            uids = sorted(int(n) for n in b" ".join(d for d in data if d).split())
            out: list[tuple[int, bytes]] = []
            for uid in uids:
                if uid <= after:  # "n:*" always matches the last message
                    continue
                status, parts = client.uid("FETCH", str(uid), "(BODY.PEEK[])")
                if status != "OK":
                    raise imaplib.IMAP4.error(f"UID FETCH {uid} failed")
                for part in parts:
                    if isinstance(part, tuple) and _FETCHED.search(part[0]):
                        out.append((uid, bytes(part[1])))
                        break
            return out
        finally:
            with contextlib.suppress(Exception):
                client.logout()

    def _event(self, uid: int, raw: bytes) -> InboundEvent | None:
        config = self._config
        fallback = f"<uid-{uid}.{config.account}@nexflow>"
        try:
            mail = parse(raw, fallback)
        except Exception:
            log.warning("email_unparsable", uid=uid, exc_info=True)
            return None
        if not mail.sender or mail.sender == config.address or mail.automatic:
            log.info("email_skipped", uid=uid, sender=mail.sender, automatic=mail.automatic)
            return None
        text = mail.text
        if len(raw) > config.max_bytes:
            text = text.encode()[: config.max_bytes].decode(errors="ignore")
            text += f"\n(the mail was larger than {config.max_bytes} bytes and was cut)"
        if not text.strip():
            text = mail.subject or "(empty mail)"
        chat_id = mail.thread
        known = self._threads.get(chat_id)
        if known is not None and known.get("address") != mail.sender:
            # A thread belongs to the sender who started it here: another person writing
            # into it (Cc, a forward, a forged References) gets a chat of their own, so
            # nobody is answered with someone else's conversation.
            chat_id = f"{mail.thread}#{mail.sender}"
        self._remember(chat_id, mail)
        return InboundEvent(
            channel=self._channel,
            chat_id=chat_id,
            sender_id=mail.sender,
            message=text,
            external_id=mail.message_id,
            metadata={
                "subject": mail.subject,
                "message_id": mail.message_id,
                "references": list(mail.references),
                "from": mail.sender_header,
                "allowlisted": config.allows(mail.sender),
                "untrusted": True,
            },
        )

    # -- state files ---------------------------------------------------------------------

    def _committed_uid(self) -> int:
        try:
            return int(self._uid_file.read_text().strip() or 0)
        except (OSError, ValueError):
            return 0

    def _commit_uid(self, uid: int) -> None:
        if uid <= self._committed_uid():
            return
        _write_atomic(self._uid_file, f"{uid}\n")

    def _load_threads(self) -> dict[str, dict[str, Any]]:
        try:
            data = json.loads(self._threads_file.read_text())
        except (OSError, ValueError):
            return {}
        return data if isinstance(data, dict) else {}

    def _remember(self, chat_id: str, mail: Parsed) -> None:
        thread = self._threads.pop(chat_id, {})
        self._threads[chat_id] = {
            "address": mail.sender,
            "subject": thread.get("subject") or mail.subject,
            "message_id": mail.message_id,
            "references": [*mail.references, mail.message_id][-20:],
        }
        while len(self._threads) > _MAX_THREADS:
            self._threads.pop(next(iter(self._threads)))
        self._save_threads()

    def _save_threads(self) -> None:
        _write_atomic(self._threads_file, json.dumps(self._threads, indent=1))

    # -- sending -------------------------------------------------------------------------

    async def send(self, out: Outbound) -> None:
        thread = self._threads.get(out.chat_id)
        if thread is None:
            raise DeliveryError(f"no mail thread {out.chat_id} is known", retryable=False)
        config = self._config
        msg = build_reply(
            sender=config.address,
            to=str(thread["address"]),
            subject=str(thread.get("subject") or ""),
            in_reply_to=str(thread.get("message_id") or ""),
            references=[str(r) for r in thread.get("references", [])],
            text=as_text(out),
            domain=config.address.rpartition("@")[2],
        )
        async with self._lock:  # one SMTP session at a time
            await asyncio.to_thread(self._smtp_send, msg)
        log.info("email_sent", to=thread["address"], thread=out.chat_id)

    def _smtp_send(self, msg: Any) -> None:
        smtp = self._config.smtp
        port = smtp.effective_port
        try:
            client: smtplib.SMTP
            if smtp.ssl is True:
                client = smtplib.SMTP_SSL(
                    smtp.host, port, timeout=smtp.timeout_s, context=ssl.create_default_context()
                )
            else:
                client = smtplib.SMTP(smtp.host, port, timeout=smtp.timeout_s)
            with client:
                if smtp.ssl == "starttls":
                    client.starttls(context=ssl.create_default_context())
                if smtp.username and smtp.password is not None:
                    client.login(smtp.username, smtp.password.get_secret_value())
                client.send_message(msg)
        except smtplib.SMTPRecipientsRefused as exc:
            codes = [code for code, _ in exc.recipients.values()]
            raise DeliveryError(
                f"recipient refused: {exc.recipients}", retryable=all(400 <= c < 500 for c in codes)
            ) from exc
        except smtplib.SMTPResponseException as exc:
            raise DeliveryError(
                f"SMTP {exc.smtp_code}: {exc.smtp_error!r}", retryable=exc.smtp_code < 500
            ) from exc
        except (smtplib.SMTPException, OSError) as exc:
            raise DeliveryError(f"SMTP failed: {type(exc).__name__}: {exc}") from exc


def _write_atomic(path: Path, text: str) -> None:
    tmp = path.with_name(path.name + ".tmp")
    with open(tmp, "w") as fh:
        fh.write(text)
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, path)
