"""IMAP IDLE (RFC 2177) on its own asyncio connection: the server tells us when mail
arrives, so the mailbox is read then instead of every ``poll_s``.

:meth:`IdleWatcher.open` logs in, asks for the capabilities and selects the mailbox
read-only; it returns None when the server does not offer IDLE (the connector then
polls). :meth:`IdleWatcher.begin` enters IDLE; :meth:`IdleWatcher.wait` returns on the
first ``EXISTS``/``RECENT`` push or after ``seconds`` (the caller re-issues IDLE before
the server's 30-minute cut-off); :meth:`IdleWatcher.end` sends ``DONE``. The connector
enters IDLE *before* it fetches, so a mail that lands between the fetch and the wait is
still pushed. Fetching stays with ``imaplib`` in a worker thread.

Errors: :class:`ImapError` (a NO/BAD answer, a protocol surprise) besides ``OSError``,
``ssl.SSLError`` and ``TimeoutError`` from the connection itself.
"""

from __future__ import annotations

import asyncio
import contextlib
import re
import ssl

from connectors.email.config import ImapConfig

_LITERAL = re.compile(rb"\{(\d+)\}\r\n$")
_PUSH = re.compile(rb"^\* \d+ (EXISTS|RECENT)\b", re.I)


class ImapError(Exception):
    """The IMAP server refused a command or answered something unexpected."""


def quote(value: str) -> str:
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


class IdleWatcher:
    def __init__(
        self, config: ImapConfig, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> None:
        self._config = config
        self._reader = reader
        self._writer = writer
        self._tags = 0
        self._idle_tag: bytes | None = None
        self._pushed = False

    @classmethod
    async def open(cls, config: ImapConfig) -> IdleWatcher | None:
        """Connected, logged in, mailbox selected; None when the server has no IDLE."""
        context = ssl.create_default_context() if config.ssl else None
        async with asyncio.timeout(config.timeout_s):
            reader, writer = await asyncio.open_connection(
                config.host,
                config.effective_port,
                ssl=context if config.ssl is True else None,
                server_hostname=config.host if config.ssl is True else None,
            )
        watcher = cls(config, reader, writer)
        try:
            async with asyncio.timeout(config.timeout_s):
                greeting = await reader.readline()
                if not greeting.startswith(b"* OK"):
                    raise ImapError(f"unexpected greeting {greeting[:60]!r}")
                if config.ssl == "starttls":
                    assert context is not None
                    await watcher.command("STARTTLS")
                    await writer.start_tls(context, server_hostname=config.host)
                password = config.password.get_secret_value()
                await watcher.command(f"LOGIN {quote(config.username)} {quote(password)}")
                untagged = await watcher.command("CAPABILITY")
                capabilities = b" ".join(
                    line for line in untagged if line.upper().startswith(b"* CAPABILITY")
                ).upper()
                if b" IDLE" not in capabilities:
                    await watcher.close()
                    return None
                await watcher.command(f"EXAMINE {quote(config.mailbox)}")
        except BaseException:
            await watcher.close()
            raise
        return watcher

    async def command(self, text: str) -> list[bytes]:
        """Send a command; return its untagged lines; raise :class:`ImapError` on NO/BAD."""
        tag = self._tag()
        self._writer.write(tag + b" " + text.encode() + b"\r\n")
        await self._writer.drain()
        untagged: list[bytes] = []
        while True:
            line = await self._line()
            if line.startswith(tag + b" "):
                status = line[len(tag) + 1 :]
                if not status.upper().startswith(b"OK"):
                    verb = text.split(" ", 1)[0]
                    raise ImapError(f"{verb}: {status.decode(errors='replace').strip()}")
                return untagged
            untagged.append(line)

    async def begin(self) -> None:
        """Enter IDLE (the server answers ``+``)."""
        self._idle_tag = self._tag()
        self._pushed = False
        self._writer.write(self._idle_tag + b" IDLE\r\n")
        await self._writer.drain()
        async with asyncio.timeout(self._config.timeout_s):
            while True:
                line = await self._line()
                if line.startswith(b"+"):
                    return
                if line.startswith(self._idle_tag + b" "):
                    raise ImapError(f"IDLE: {line.decode(errors='replace').strip()}")
                self._pushed |= _PUSH.match(line) is not None

    async def wait(self, seconds: float) -> bool:
        """True when the server pushed new mail, False after ``seconds``."""
        if self._pushed:
            return True
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(seconds):
                while True:
                    line = await self._line()
                    if _PUSH.match(line):
                        self._pushed = True
                        return True
                    if line.upper().startswith(b"* BYE"):
                        raise ImapError("the server closed the IDLE connection")
        return False

    async def end(self) -> None:
        """Leave IDLE (``DONE``) and read up to its tagged answer."""
        tag, self._idle_tag = self._idle_tag, None
        if tag is None:
            return
        self._writer.write(b"DONE\r\n")
        await self._writer.drain()
        async with asyncio.timeout(self._config.timeout_s):
            while True:
                line = await self._line()
                if line.startswith(tag + b" "):
                    if not line[len(tag) + 1 :].upper().startswith(b"OK"):
                        raise ImapError(f"IDLE: {line.decode(errors='replace').strip()}")
                    return

    async def close(self) -> None:
        self._writer.close()
        with contextlib.suppress(OSError, ssl.SSLError, TimeoutError):
            async with asyncio.timeout(1):
                await self._writer.wait_closed()

    def _tag(self) -> bytes:
        self._tags += 1
        return b"NX%d" % self._tags

    async def _line(self) -> bytes:
        line = await self._reader.readline()
        if not line:
            raise ImapError("the server closed the connection")
        while (literal := _LITERAL.search(line)) is not None:  # {n} then n bytes, then more
            line += await self._reader.readexactly(int(literal.group(1)))
            line += await self._reader.readline()
        return line
