"""A small IMAP4rev1 server on loopback for tests, enough for the standard library's
``imaplib`` and for Nexflow's IDLE watcher: greeting, CAPABILITY, LOGIN, SELECT/EXAMINE,
UID SEARCH, UID FETCH (``BODY.PEEK[]``, ``BODY[]``, ``RFC822``, ``RFC822.SIZE``,
``BODY.PEEK[HEADER]``), IDLE (RFC 2177), NOOP, LOGOUT. One mailbox, ``INBOX`` (another
name answers NO [NONEXISTENT]); the test appends raw messages with
:meth:`FakeImap.append` (on the server's event loop); UIDs start at 1 and only grow.

``async with FakeImap() as imap:`` gives ``imap.port``. ``idle=False`` leaves IDLE out of
the capabilities (a server that only supports polling). Counters for tests: ``logins``
(successful), ``searches`` (UID SEARCH), ``idles`` (IDLE commands), ``pushes`` (EXISTS
sent to an idling client). ``fail_logins`` makes LOGIN answer NO.

While a client idles, every :meth:`append` is pushed to it as ``* <n> EXISTS``; a client
that enters IDLE after mail arrived since it last heard the count is told at once.
"""

from __future__ import annotations

import asyncio
import contextlib
import re
import shlex
from dataclasses import dataclass, field
from types import TracebackType

_LINE = re.compile(r"^(\S+) (\S+)(?: (.*))?$")


@dataclass
class FakeImap:
    username: str = "bot@example.com"
    password: str = "secret"
    host: str = "127.0.0.1"
    port: int = 0
    messages: list[tuple[int, bytes]] = field(default_factory=list)
    idle: bool = True
    logins: int = 0
    searches: int = 0
    idles: int = 0
    pushes: int = 0
    fail_logins: bool = False
    _next_uid: int = 1
    _server: asyncio.Server | None = None
    _waiting: set[asyncio.Event] = field(default_factory=set)

    def append(self, raw: bytes) -> int:
        uid = self._next_uid
        self._next_uid += 1
        self.messages.append((uid, raw.replace(b"\r\n", b"\n").replace(b"\n", b"\r\n")))
        for event in self._waiting:
            event.set()
        return uid

    @property
    def capabilities(self) -> bytes:
        return b"IMAP4rev1 AUTH=PLAIN" + (b" IDLE" if self.idle else b"")

    async def __aenter__(self) -> FakeImap:
        self._server = await asyncio.start_server(self._client, self.host, self.port)
        self.port = int(self._server.sockets[0].getsockname()[1])
        return self

    async def __aexit__(
        self, et: type[BaseException] | None, e: BaseException | None, tb: TracebackType | None
    ) -> None:
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()

    async def _client(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writer.write(b"* OK [CAPABILITY " + self.capabilities + b"] fake IMAP ready\r\n")
        authed = False
        told = 0  # the message count this client last heard
        try:
            while line := await reader.readline():
                match = _LINE.match(line.decode(errors="replace").rstrip("\r\n"))
                if match is None:
                    writer.write(b"* BAD syntax\r\n")
                    continue
                tag, command, rest = match.group(1), match.group(2).upper(), match.group(3) or ""
                if command in ("SELECT", "EXAMINE"):
                    told = len(self.messages)
                if command == "IDLE" and authed and self.idle:
                    told = await self._idle(reader, writer, tag, told)
                    continue
                # untagged lines, NUL, then the tagged status (a NUL never ends a status)
                body, _, status = self._command(command, rest, authed).rpartition(b"\0")
                if command == "LOGIN" and status.startswith(b"OK"):
                    authed = True
                writer.write(body + tag.encode() + b" " + status + b"\r\n")
                await writer.drain()
                if command == "LOGOUT":
                    break
        except (ConnectionError, asyncio.IncompleteReadError):
            pass
        finally:
            writer.close()
            with contextlib.suppress(Exception):
                await writer.wait_closed()

    async def _idle(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, tag: str, told: int
    ) -> int:
        """RFC 2177: ``+ idling``, then ``* n EXISTS`` on each new mail until ``DONE``."""
        self.idles += 1
        changed = asyncio.Event()
        self._waiting.add(changed)
        writer.write(b"+ idling\r\n")
        done = asyncio.ensure_future(reader.readline())
        try:
            while True:
                if len(self.messages) > told:
                    told = len(self.messages)
                    self.pushes += 1
                    writer.write(b"* %d EXISTS\r\n" % told)
                await writer.drain()
                changed.clear()
                woke = asyncio.ensure_future(changed.wait())
                await asyncio.wait({done, woke}, return_when=asyncio.FIRST_COMPLETED)
                woke.cancel()
                if done.done():
                    break
            if done.result().strip().upper() == b"DONE":
                writer.write(tag.encode() + b" OK IDLE terminated\r\n")
            else:
                writer.write(tag.encode() + b" BAD expected DONE\r\n")
            await writer.drain()
            return told
        finally:
            done.cancel()
            self._waiting.discard(changed)

    def _command(self, command: str, rest: str, authed: bool) -> bytes:
        if command == "CAPABILITY":
            return b"* CAPABILITY " + self.capabilities + b"\r\n\0OK CAPABILITY completed"
        if command == "NOOP":
            return b"\0OK NOOP completed"
        if command == "LOGOUT":
            return b"* BYE logging out\r\n\0OK LOGOUT completed"
        if command == "LOGIN":
            args = shlex.split(rest)
            if self.fail_logins or args != [self.username, self.password]:
                return b"\0NO [AUTHENTICATIONFAILED] invalid credentials"
            self.logins += 1
            return b"\0OK LOGIN completed"
        if not authed:
            return b"\0BAD log in first"
        if command in ("SELECT", "EXAMINE"):
            if shlex.split(rest)[:1] != ["INBOX"] and rest.upper().strip('"') != "INBOX":
                return b"\0NO [NONEXISTENT] no such mailbox"
            mode = b"READ-ONLY" if command == "EXAMINE" else b"READ-WRITE"
            head = (
                b"* FLAGS (\\Seen \\Answered \\Flagged \\Deleted \\Draft)\r\n"
                b"* %d EXISTS\r\n* 0 RECENT\r\n* OK [UIDVALIDITY 1] UIDs valid\r\n"
                b"* OK [UIDNEXT %d] next UID\r\n" % (len(self.messages), self._next_uid)
            )
            return head + b"\0OK [" + mode + b"] " + command.encode() + b" completed"
        if command == "UID":
            sub, _, params = rest.partition(" ")
            if sub.upper() == "SEARCH":
                self.searches += 1
                return self._search(params)
            if sub.upper() == "FETCH":
                return self._fetch(params)
        return b"\0BAD unknown command"

    def _uids(self, spec: str) -> list[int]:
        highest = self.messages[-1][0] if self.messages else 0
        found: set[int] = set()
        for item in spec.split(","):
            low, sep, high = item.partition(":")
            a = highest if low == "*" else int(low)
            b = (highest if high == "*" else int(high)) if sep else a
            a, b = min(a, b), max(a, b)
            found.update(uid for uid, _ in self.messages if a <= uid <= b)
        return sorted(found)

    def _search(self, args: str) -> bytes:
        words = args.split()
        if len(words) == 2 and words[0].upper() == "UID":
            uids = self._uids(words[1])
        elif words and words[0].upper() == "ALL":
            uids = [uid for uid, _ in self.messages]
        else:
            return b"\0BAD only UID <set> and ALL are searched here"
        return b"* SEARCH" + b"".join(b" %d" % u for u in uids) + b"\r\n\0OK SEARCH completed"

    def _fetch(self, args: str) -> bytes:
        spec, _, items = args.partition(" ")
        items = items.upper()
        header = "BODY.PEEK[HEADER]" in items or "BODY[HEADER]" in items
        whole = any(
            k in items.replace("RFC822.SIZE", "") for k in ("BODY.PEEK[]", "BODY[]", "RFC822")
        )
        sized = "RFC822.SIZE" in items
        if not (header or whole or sized):
            return (
                b"\0BAD only BODY.PEEK[], BODY[], RFC822, RFC822.SIZE and HEADER are fetched here"
            )
        name = b"BODY[HEADER]" if header else b"RFC822" if "RFC822" in items else b"BODY[]"
        out = b""
        wanted = set(self._uids(spec))
        for seq, (uid, raw) in enumerate(self.messages, start=1):
            if uid not in wanted:
                continue
            size = b" RFC822.SIZE %d" % len(raw) if sized else b""
            if not (header or whole):
                out += b"* %d FETCH (UID %d%s)\r\n" % (seq, uid, size)
                continue
            data = raw.split(b"\r\n\r\n", 1)[0] + b"\r\n\r\n" if header else raw
            out += b"* %d FETCH (UID %d%s %s {%d}\r\n%s)\r\n" % (
                seq,
                uid,
                size,
                name,
                len(data),
                data,
            )
        return out + b"\0OK FETCH completed"
