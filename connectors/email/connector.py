"""The email connector: reads an IMAP mailbox (IDLE, else polling), replies over SMTP in
the same thread.

Inbound: the receiver task fetches the messages whose UID is above the last one seen
(:func:`~connectors.email.imap.fetch_new`, ``imaplib`` in a worker thread), then waits:
in IMAP IDLE (:mod:`connectors.email.idle`) when the server offers it and ``idle`` is on,
re-issued every ``idle_s``; otherwise ``poll_s``. Each mail becomes an
:class:`InboundEvent` whose ``chat_id`` is the thread's root Message-ID (one mail thread,
one session) and whose ``external_id`` is the mail's Message-ID (the inbox drops a
duplicate). Its attached files are saved under ``<files_dir>/<thread>/`` within
``attachments`` limits and listed in the text (:mod:`connectors.email.attachments`).
The last UID is written to ``<state_dir>/<account>.uid`` only after the consumer of
:meth:`events` has taken the event (it is then in the durable inbox), so a crash
re-delivers rather than loses a mail, and the inbox drops the repeat. A mailbox that
fails is retried after 1 s, 2 s, 4 s … up to ``backoff_max_s`` (:mod:`nexflow.backoff`),
each failure logged as ``email_mailbox_unreachable`` with the reason;
:attr:`EmailConnector.last_error` holds it.

Outbound: ``send`` mails :func:`~nexflow.bus.events.as_text` of the message with
``smtplib`` (in a thread) to the thread's sender, with ``In-Reply-To``/``References`` and
``Subject: Re: …``; a :class:`FileOut` carries its file (from inside the workspace) as
an attachment. Who and what a thread is (address, subject, last Message-ID) is kept in
``<state_dir>/<account>.threads.json`` so a restarted gateway can still reply.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import re
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import structlog

from connectors.email import attachments, imap, smtp
from connectors.email.config import EmailConfig
from connectors.email.idle import IdleWatcher
from connectors.email.mail import Parsed, build_reply, parse
from connectors.email.manifest import MANIFEST
from nexflow.backoff import Backoff, pause
from nexflow.bus.events import FileOut, InboundEvent, Outbound, as_text
from nexflow.gateway.connector import ConnectorManifest, DeliveryError, handed_out

log = structlog.get_logger("nexflow.email")

_MAX_THREADS = 5000
_UNSAFE_DIR = re.compile(r"[^\w.@-]+")


class EmailConnector:
    """``files_dir`` receives inbound attachments; ``workspace`` is the root that paths
    shown to the model are relative to and the only place outbound files come from."""

    def __init__(
        self,
        config: EmailConfig,
        state_dir: Path,
        channel: str = "email",
        *,
        files_dir: Path | None = None,
        workspace: Path | None = None,
    ) -> None:
        self._config = config
        self._backoff = Backoff(1.0, config.backoff_max_s)
        self._dir = state_dir
        self._channel = channel
        self._workspace = workspace or state_dir
        self._files_dir = files_dir or self._workspace / "inbox" / channel
        self._uid_file = state_dir / f"{config.account}.uid"
        self._threads_file = state_dir / f"{config.account}.threads.json"
        # (event, UID); an event of None only commits its UID (a skipped mail), in order
        self._queue: asyncio.Queue[tuple[InboundEvent | None, int]] = asyncio.Queue(256)
        self._stopped = asyncio.Event()
        self._receiver: asyncio.Task[None] | None = None
        self._seen = 0  # the highest UID fetched (in memory)
        self._threads: dict[str, dict[str, Any]] = {}
        self._lock = asyncio.Lock()
        self.polls = 0  # answered fetches (tests, health)
        self.idling = False  # the mailbox is watched with IDLE (else polled)
        self.last_error: str | None = None  # why the mailbox failed last, until it answers
        self.failures = 0  # failed attempts in a row

    @property
    def manifest(self) -> ConnectorManifest:
        return MANIFEST

    # -- lifecycle ---------------------------------------------------------------------

    async def start(self) -> None:
        self._dir.mkdir(parents=True, exist_ok=True)
        self._seen = self._committed_uid()
        self._threads = self._load_threads()
        self._stopped.clear()
        self._receiver = asyncio.create_task(self._receive_loop(), name="nexflow-email")

    async def stop(self) -> None:
        self._stopped.set()
        if self._receiver is not None:
            self._receiver.cancel()
            await asyncio.gather(self._receiver, return_exceptions=True)
            self._receiver = None

    async def events(self) -> AsyncIterator[InboundEvent]:
        async with contextlib.aclosing(handed_out(self._queue, self._stopped)) as queued:
            async for event, uid in queued:
                if event is not None:
                    yield event
                # The consumer came back: the event is in the inbox. Commit its UID.
                self._commit_uid(uid)

    # -- receiving ---------------------------------------------------------------------

    async def _receive_loop(self) -> None:
        config = self._config
        watcher: IdleWatcher | None = None
        use_idle = config.idle
        try:
            while not self._stopped.is_set():
                wait = config.poll_s
                try:
                    await self._queue.join()  # fetch again only once the last batch is taken
                    if use_idle and watcher is None:
                        watcher = await IdleWatcher.open(config.imap)
                        use_idle = self.idling = watcher is not None
                        log.info("email_watching", idle=self.idling, mailbox=config.imap.mailbox)
                    if watcher is not None:
                        await watcher.begin()  # before the fetch: no mail slips in between
                    await self.poll_once()
                    if self.failures:
                        log.info("email_mailbox_reachable", after_failures=self.failures)
                    self.failures, self.last_error = 0, None
                    if watcher is not None:
                        await watcher.wait(config.idle_s)
                        await watcher.end()
                        continue
                except imap.MAILBOX_ERRORS as exc:
                    wait = self._failed()
                    self.last_error = imap.failure(
                        exc, config.imap.host, config.imap.effective_port
                    )
                    log.warning(
                        "email_mailbox_unreachable",
                        reason=self.last_error,
                        failures=self.failures,
                        retry_in_s=wait,
                        exc_info=True,
                    )
                except Exception:
                    wait = self._failed()
                    log.exception("email_receiver_crashed", retry_in_s=wait)
                if self.failures and watcher is not None:
                    await watcher.close()
                    watcher = None
                await pause(wait, self._stopped)
        finally:
            if watcher is not None:
                await watcher.close()

    def _failed(self) -> float:
        """Count a failure; the seconds until the next attempt (1, 2, 4 … up to the cap)."""
        self.failures += 1
        return self._backoff.delay(self.failures)

    async def poll_once(self) -> None:
        """Fetch the new mail and queue its events (the receiver calls it)."""
        config = self._config
        fetched = await asyncio.to_thread(
            imap.fetch_new, config.imap, self._seen, config.max_mail_bytes
        )
        self.polls += 1
        for item in fetched:
            self._seen = max(self._seen, item.uid)
            await self._queue.put((await self._event(item), item.uid))

    async def _event(self, item: imap.Fetched) -> InboundEvent | None:
        config = self._config
        uid = item.uid
        fallback = f"<uid-{uid}.{config.account}@nexflow>"
        try:
            mail = parse(item.raw, fallback)
        except Exception:
            log.warning("email_unparsable", uid=uid, exc_info=True)
            return None
        if not mail.sender or mail.sender == config.address or mail.automatic:
            log.info("email_skipped", uid=uid, sender=mail.sender, automatic=mail.automatic)
            return None
        text = mail.text
        if len(text.encode()) > config.max_bytes:
            text = text.encode()[: config.max_bytes].decode(errors="ignore")
            text += f"\n(the mail's text was longer than {config.max_bytes} bytes and was cut)"
        if not item.complete:
            log.info("email_too_large", uid=uid, size=item.size, limit=config.max_mail_bytes)
            text += (
                f"\n(the mail is {attachments.human(item.size)}, over the "
                f"{attachments.human(config.max_mail_bytes)} limit: only its subject was read)"
            )
        chat_id = mail.thread
        known = self._threads.get(chat_id)
        if known is not None and known.get("address") != mail.sender:
            # A thread belongs to the sender who started it here: another person writing
            # into it (Cc, a forward, a forged References) gets a chat of their own, so
            # nobody is answered with someone else's conversation.
            chat_id = f"{mail.thread}#{mail.sender}"
        folder = self._files_dir / (_UNSAFE_DIR.sub("_", chat_id).strip("._") or "thread")
        found = await asyncio.to_thread(
            attachments.save_inbound, mail.files, folder, str(uid), config.attachments
        )
        listed = attachments.describe(found, self._workspace)
        if not text.strip():
            text = mail.subject or ("(no text)" if listed else "(empty mail)")
        if listed:
            text = f"{text.rstrip()}\n\n{listed}"
        self._remember(chat_id, mail)
        return InboundEvent(
            channel=self._channel,
            chat_id=chat_id,
            sender_id=mail.sender,
            message=text,
            external_id=mail.message_id,
            attachments=found.saved,
            metadata={
                "subject": mail.subject,
                "message_id": mail.message_id,
                "references": list(mail.references),
                "from": mail.sender_header,
                "allowlisted": config.allows(mail.sender),
                "untrusted": True,
                **({"skipped_attachments": list(found.notes)} if found.notes else {}),
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
        text, file = as_text(out), None
        if isinstance(out, FileOut):
            text = out.caption
            try:
                loaded = await asyncio.to_thread(
                    attachments.outbound_file, out.path, self._workspace, config.attachments
                )
            except attachments.FileRefused as exc:
                raise DeliveryError(str(exc), retryable=False) from exc
            if isinstance(loaded, str):  # over the limits: said in the text instead
                text = f"{text}\n\n{loaded}".strip()
            else:
                file = loaded
        msg = build_reply(
            sender=config.address,
            to=str(thread["address"]),
            subject=str(thread.get("subject") or ""),
            in_reply_to=str(thread.get("message_id") or ""),
            references=[str(r) for r in thread.get("references", [])],
            text=text,
            domain=config.address.rpartition("@")[2],
        )
        if file is not None:
            attachments.attach(msg, file)
        async with self._lock:  # one SMTP session at a time
            await asyncio.to_thread(smtp.send, config.smtp, msg)
        log.info("email_sent", to=thread["address"], thread=out.chat_id, file=bool(file))


def _write_atomic(path: Path, text: str) -> None:
    tmp = path.with_name(path.name + ".tmp")
    with open(tmp, "w") as fh:
        fh.write(text)
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, path)
