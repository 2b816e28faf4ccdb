"""Real-protocol servers on loopback for the bundled tool-skill tests.

* :class:`MailSink` — an ``aiosmtpd`` SMTP server (plain, STARTTLS or implicit TLS, with
  optional AUTH) that keeps every message it accepts;
* :class:`SSHServer` — an ``asyncssh`` server with a generated host key that accepts one
  client key and runs commands as real processes (so the real ``ssh`` client is tested);
* :class:`CalDAVServer` — a small CalDAV server (PROPFIND, REPORT calendar-query with a
  multistatus answer, GET, PUT with If-None-Match, Basic auth) over ``http.server``.
"""

from __future__ import annotations

import base64
import email
from dataclasses import dataclass, field
from email.message import Message
from pathlib import Path
from typing import Any

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, AuthResult, Envelope, LoginPassword, Session
from fakes_loopback import Cert, LoopbackServer, QuietHandler

from nexflow.testing.postgres import Postgres, find_pg_bin, start_postgres  # noqa: F401

# -- SMTP -------------------------------------------------------------------------------


@dataclass
class Received:
    """One accepted message: the envelope and the parsed message."""

    mail_from: str
    rcpt_tos: list[str]
    message: Message
    raw: bytes
    login: str | None = None


@dataclass
class MailSink:
    """An SMTP server on 127.0.0.1. ``mode``: ``none``, ``starttls`` (required) or ``tls``.

    ``users`` turns on AUTH (PLAIN/LOGIN); ``refuse`` maps recipient addresses to the
    ``550`` text RCPT answers them with.
    """

    mode: str = "none"
    cert: Cert | None = None
    users: dict[str, str] = field(default_factory=dict)
    refuse: dict[str, str] = field(default_factory=dict)
    received: list[Received] = field(default_factory=list)
    port: int = 0
    _controller: Controller | None = None

    async def handle_RCPT(
        self, server: SMTP, session: Session, envelope: Envelope, address: str, options: Any
    ) -> str:
        if address in self.refuse:
            return f"550 {self.refuse[address]}"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        raw = bytes(envelope.original_content or b"")
        login = session.auth_data.login.decode() if session.auth_data else None
        self.received.append(
            Received(
                str(envelope.mail_from),
                list(envelope.rcpt_tos),
                email.message_from_bytes(raw),
                raw,
                login,
            )
        )
        return "250 Message accepted"

    def _authenticate(
        self, server: SMTP, session: Session, envelope: Envelope, mechanism: str, data: Any
    ) -> AuthResult:
        if isinstance(data, LoginPassword):
            user, password = data.login.decode(), data.password.decode()
            if self.users.get(user) == password:
                return AuthResult(success=True, auth_data=data)
        return AuthResult(success=False, handled=False)

    def start(self) -> MailSink:
        import socket

        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            self.port = sock.getsockname()[1]
        kwargs: dict[str, Any] = {}
        if self.users:
            kwargs.update(authenticator=self._authenticate, auth_required=True)
        if self.mode == "starttls":
            assert self.cert is not None
            kwargs.update(tls_context=self.cert.server, require_starttls=True)
        elif self.mode == "tls":
            assert self.cert is not None
            kwargs.update(ssl_context=self.cert.server)
        elif self.users:
            kwargs.update(auth_require_tls=False)
        self._controller = Controller(
            self, hostname="127.0.0.1", port=self.port, server_hostname="localhost", **kwargs
        )
        self._controller.start()
        return self

    def stop(self) -> None:
        if self._controller is not None:
            self._controller.stop()


# -- SSH --------------------------------------------------------------------------------


def _asyncssh() -> Any:
    """asyncssh, imported lazily: its import trips cryptography's DSA deprecation warning
    (pytest runs with warnings as errors), which says nothing about these tests."""
    import warnings

    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="DSA is deprecated")
        import asyncssh
    return asyncssh


def _kill_group(pid: int) -> None:
    import contextlib
    import os
    import signal

    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pid, signal.SIGKILL)


@dataclass
class SSHKeys:
    """Files the ssh-command skill reads: a client key, and known_hosts for the server."""

    key_file: Path
    known_hosts: Path
    public_key: str


class SSHServer:
    """An ``asyncssh`` server on 127.0.0.1 with a generated host key.

    It accepts only the public keys in ``authorized`` (see :meth:`keys_for`) for user
    ``deploy`` and runs each
    exec request as ``/bin/sh -c <command>`` in ``cwd``; ``commands`` records them exactly
    as received. Start it inside the test's event loop (``await server.start()``).
    """

    def __init__(self, cwd: Path, user: str = "deploy") -> None:
        asyncssh = _asyncssh()

        self.cwd = cwd
        self.user = user
        self.host_key = asyncssh.generate_private_key("ssh-ed25519")
        self.authorized: set[str] = set()
        self.commands: list[str] = []
        self.port = 0
        self._server: Any = None
        self._children: set[Any] = set()

    async def start(self) -> SSHServer:
        asyncssh = _asyncssh()

        outer = self

        class Handler(asyncssh.SSHServer):
            def begin_auth(self, username: str) -> bool:
                return True

            def public_key_auth_supported(self) -> bool:
                return True

            def validate_public_key(self, username: str, key: asyncssh.SSHKey) -> bool:
                public = key.export_public_key("openssh").decode().split()[1]
                return username == outer.user and public in outer.authorized

            def password_auth_supported(self) -> bool:
                return False

        self._server = await asyncssh.create_server(
            Handler,
            "127.0.0.1",
            0,
            server_host_keys=[self.host_key],
            process_factory=self._run,
            encoding=None,
        )
        self.port = self._server.sockets[0].getsockname()[1]
        return self

    async def _run(self, process: Any) -> None:
        import asyncio

        command = process.command
        if command is None:
            process.stderr.write(b"no shell here\n")
            process.exit(1)
            return
        self.commands.append(command)
        child = await asyncio.create_subprocess_exec(
            "/bin/sh",
            "-c",
            command,
            cwd=self.cwd,
            stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
            start_new_session=True,
        )
        self._children.add(child)
        try:
            out, err = await child.communicate()
            process.stdout.write(out)
            process.stderr.write(err)
            process.exit(child.returncode or 0)
        finally:
            if child.returncode is None:
                _kill_group(child.pid)
                await child.wait()
            self._children.discard(child)

    def keys_for(self, folder: Path, *, authorize: bool = True) -> SSHKeys:
        """Write a new client key (authorized unless told) and known_hosts into ``folder``."""
        asyncssh = _asyncssh()

        folder.mkdir(parents=True, exist_ok=True)
        key = asyncssh.generate_private_key("ssh-ed25519")
        key_file = folder / "id_ed25519"
        key_file.write_bytes(key.export_private_key("openssh"))
        key_file.chmod(0o600)
        known = folder / "known_hosts"
        host_pub = self.host_key.export_public_key("openssh").decode().strip()
        known.write_text(f"[127.0.0.1]:{self.port} {host_pub}\n")
        public = key.export_public_key("openssh").decode().strip()
        if authorize:
            self.authorized.add(public.split()[1])
        return SSHKeys(key_file, known, public)

    async def stop(self) -> None:
        for child in list(self._children):
            if child.returncode is None:
                _kill_group(child.pid)
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()


# -- CalDAV -----------------------------------------------------------------------------


class CalDAVServer:
    """A CalDAV calendar collection at ``/cal/`` on 127.0.0.1 (Basic auth ``user``/``pw``).

    ``objects`` maps resource names (``x.ics``) to iCalendar text. PROPFIND (Depth 0 or 1)
    describes the collection, REPORT answers a ``calendar-query`` with a 207 multistatus
    of the objects whose events overlap its ``time-range`` (recurring ones always), GET
    returns one object, PUT stores one (``If-None-Match: *`` refuses to overwrite: 412).
    ``feeds`` are public ICS files at ``/feeds/<name>``.
    ``requests`` records ``(method, path, headers, body)``.
    """

    def __init__(self, user: str = "ada", password: str = "pw", name: str = "Personal") -> None:
        self.user, self.password, self.name = user, password, name
        self.objects: dict[str, str] = {}
        self.etags: dict[str, int] = {}
        self.feeds: dict[str, str] = {}  # public ICS feeds at /feeds/<name>, no login
        self.taken = False  # True: every resource name counts as existing (a UID clash)
        self.requests: list[tuple[str, str, dict[str, str], bytes]] = []
        self._httpd: LoopbackServer | None = None
        self.port = 0

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/cal/"

    def start(self) -> CalDAVServer:
        outer = self

        class Handler(QuietHandler):
            def _body(self) -> bytes:
                return self.rfile.read(int(self.headers.get("Content-Length") or 0))

            def _send(self, status: int, body: bytes = b"", **headers: str) -> None:
                self.send_response(status)
                for key, value in headers.items():
                    self.send_header(key.replace("_", "-"), value)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def _authorized(self, body: bytes) -> bool:
                outer.requests.append((self.command, self.path, dict(self.headers), body))
                token = base64.b64encode(f"{outer.user}:{outer.password}".encode()).decode()
                if self.headers.get("Authorization") == f"Basic {token}":
                    return True
                self._send(401, b"login", WWW_Authenticate='Basic realm="cal"')
                return False

            def do_PROPFIND(self) -> None:
                if not self._authorized(self._body()):
                    return
                if self.path != "/cal/":
                    self._send(404)
                    return
                xml = _multistatus(
                    [
                        (
                            "/cal/",
                            "<D:resourcetype><D:collection/><C:calendar/></D:resourcetype>"
                            f"<D:displayname>{outer.name}</D:displayname>",
                        )
                    ]
                )
                self._send(207, xml, Content_Type="application/xml; charset=utf-8")

            def do_REPORT(self) -> None:
                body = self._body()
                if not self._authorized(body):
                    return
                import xml.etree.ElementTree as ET

                root = ET.fromstring(body)
                if root.tag != f"{{{CAL}}}calendar-query" or self.headers.get("Depth") != "1":
                    self._send(400, b"calendar-query with Depth: 1 expected")
                    return
                rng = root.find(f".//{{{CAL}}}time-range")
                start = rng.get("start", "") if rng is not None else ""
                end = rng.get("end", "") if rng is not None else ""
                items = []
                for name, text in sorted(outer.objects.items()):
                    if _overlaps(text, start, end):
                        items.append(
                            (
                                f"/cal/{name}",
                                f'<D:getetag>"{outer.etags[name]}"</D:getetag>'
                                f"<C:calendar-data>{_xml_text(text)}</C:calendar-data>",
                            )
                        )
                self._send(207, _multistatus(items), Content_Type="application/xml")

            def do_GET(self) -> None:
                feed = self.path.removeprefix("/feeds/")
                if self.path.startswith("/feeds/") and feed in outer.feeds:
                    self._send(200, outer.feeds[feed].encode(), Content_Type="text/calendar")
                    return
                if not self._authorized(b""):
                    return
                name = self.path.removeprefix("/cal/")
                if name not in outer.objects:
                    self._send(404)
                    return
                self._send(200, outer.objects[name].encode(), Content_Type="text/calendar")

            def do_PUT(self) -> None:
                body = self._body()
                if not self._authorized(body):
                    return
                name = self.path.removeprefix("/cal/")
                if not self.path.startswith("/cal/") or "/" in name or not name:
                    self._send(403)
                    return
                if not self.headers.get("Content-Type", "").startswith("text/calendar"):
                    self._send(415)
                    return
                exists = outer.taken or name in outer.objects
                if self.headers.get("If-None-Match") == "*" and exists:
                    self._send(412)
                    return
                text = body.decode()
                if not text.startswith("BEGIN:VCALENDAR\r\n") or "BEGIN:VEVENT" not in text:
                    self._send(400, b"not a calendar object")
                    return
                outer.objects[name] = text
                outer.etags[name] = outer.etags.get(name, 0) + 1
                self._send(201, ETag=f'"{outer.etags[name]}"')

        self._httpd = LoopbackServer(Handler).start()
        self.port = self._httpd.port
        return self

    def add(self, name: str, text: str) -> None:
        self.objects[name] = text
        self.etags[name] = 1

    def stop(self) -> None:
        if self._httpd is not None:
            self._httpd.stop()


DAV_NS, CAL = "DAV:", "urn:ietf:params:xml:ns:caldav"


def _xml_text(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def _multistatus(items: list[tuple[str, str]]) -> bytes:
    parts = [f'<?xml version="1.0" encoding="utf-8"?>\n<D:multistatus xmlns:D="{DAV_NS}" ']
    parts.append(f'xmlns:C="{CAL}">')
    for href, props in items:
        parts.append(
            f"<D:response><D:href>{href}</D:href><D:propstat><D:prop>{props}</D:prop>"
            "<D:status>HTTP/1.1 200 OK</D:status></D:propstat></D:response>"
        )
    parts.append("</D:multistatus>")
    return "".join(parts).encode()


def _overlaps(text: str, start: str, end: str) -> bool:
    """Does an object's event touch ``[start, end)`` (UTC stamps)? Recurring: always.

    Deliberately simple (and independent of the skill's own parser): DTSTART/DTEND
    compared as UTC stamps, dates as midnight UTC.
    """
    import re

    if "RRULE:" in text or not start:
        return True

    def stamp(prop: str) -> str | None:
        m = re.search(rf"^{prop}[^:\r\n]*:(\d{{8}})(T\d{{6}}Z?)?", text, re.M)
        if not m:
            return None
        return m.group(1) + (m.group(2) or "T000000").rstrip("Z") + "Z"

    first = stamp("DTSTART") or ""
    last = stamp("DTEND") or first
    return first < end and last > start
