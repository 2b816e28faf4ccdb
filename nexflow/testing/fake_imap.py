"""A small IMAP4rev1 server on loopback for tests, enough for the standard library's
``imaplib``: greeting, CAPABILITY, LOGIN, SELECT/EXAMINE, UID SEARCH, UID FETCH
(``BODY.PEEK[]``, ``BODY[]``, ``RFC822``), NOOP, LOGOUT. One mailbox (``INBOX``); the
test appends raw messages with :meth:`FakeImap.append`; UIDs start at 1 and only grow.

``async with FakeImap() as imap:`` gives ``imap.port``; ``imap.logins`` counts the
successful logins, ``imap.fail_logins`` makes LOGIN answer NO (an unreachable box).
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
    logins: int = 0
    fail_logins: bool = False
    _next_uid: int = 1
    _server: asyncio.Server | None = None

    def append(self, raw: bytes) -> int:
        uid = self._next_uid
        self._next_uid += 1
        self.messages.append((uid, raw.replace(b"\r\n", b"\n").replace(b"\n", b"\r\n")))
        return uid

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
        writer.write(b"* OK [CAPABILITY IMAP4rev1] fake IMAP ready\r\n")
        authed = False
        try:
            while line := await reader.readline():
                match = _LINE.match(line.decode(errors="replace").rstrip("\r\n"))
                if match is None:
                    writer.write(b"* BAD syntax\r\n")
                    continue
                tag, command, rest = match.group(1), match.group(2).upper(), match.group(3) or ""
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

    def _command(self, command: str, rest: str, authed: bool) -> bytes:
        if command == "CAPABILITY":
            return b"* CAPABILITY IMAP4rev1 AUTH=PLAIN\r\n\0OK CAPABILITY completed"
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
        if not any(k in items for k in ("BODY.PEEK[]", "BODY[]", "RFC822")):
            return b"\0BAD only BODY.PEEK[], BODY[] and RFC822 are fetched here"
        name = b"RFC822" if "RFC822" in items else b"BODY[]"
        out = b""
        wanted = set(self._uids(spec))
        for seq, (uid, raw) in enumerate(self.messages, start=1):
            if uid in wanted:
                out += b"* %d FETCH (UID %d %s {%d}\r\n%s)\r\n" % (seq, uid, name, len(raw), raw)
        return out + b"\0OK FETCH completed"
