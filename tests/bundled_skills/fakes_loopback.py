"""What the loopback fakes share:

- :class:`LoopbackServer` (127.0.0.1, a free port) and :class:`UnixLoopbackServer`:
  threaded HTTP servers served from a daemon thread; :class:`QuietHandler` logs nothing;
- :class:`ServedFake`: ``with Fake() as fake:`` serves a fake for the block;
- :func:`make_cert`: a self-signed TLS certificate for 127.0.0.1 (and ``localhost``).
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import socketserver
import ssl
import threading
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, Self

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID


class QuietHandler(BaseHTTPRequestHandler):
    server: LoopbackServer | UnixLoopbackServer

    def log_message(self, format: str, *args: object) -> None:
        pass


class _Serving(socketserver.BaseServer):
    """Serves from a daemon thread between :meth:`start` and :meth:`stop`; ``fake`` is
    the fake whose handlers answer."""

    daemon_threads = True
    fake: Any = None
    _thread: threading.Thread | None = None

    def handle_error(self, request: object, client_address: object) -> None:
        pass  # a client hanging up mid-answer (what the timeout tests do) is no failure

    def start(self) -> Self:
        self._thread = threading.Thread(target=self.serve_forever, daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self.shutdown()
        self.server_close()
        if self._thread is not None:
            self._thread.join(5)


class LoopbackServer(_Serving, ThreadingHTTPServer):
    """An HTTP server on a free port of 127.0.0.1."""

    def __init__(self, handler: type[BaseHTTPRequestHandler], fake: Any = None) -> None:
        super().__init__(("127.0.0.1", 0), handler)
        self.fake = fake

    @property
    def port(self) -> int:
        return int(self.server_address[1])


class UnixLoopbackServer(_Serving, socketserver.ThreadingMixIn, socketserver.UnixStreamServer):
    """An HTTP server on the unix socket ``path``."""

    def __init__(self, path: Path, handler: type[BaseHTTPRequestHandler], fake: Any = None) -> None:
        super().__init__(str(path), handler)
        self.fake = fake


class ServedFake:
    """A fake behind one loopback server: ``with Fake() as fake:`` serves it, leaving the
    block stops it. Subclasses build the server in :meth:`_make_server`."""

    _server: LoopbackServer | UnixLoopbackServer | None = None

    def _make_server(self) -> LoopbackServer | UnixLoopbackServer:
        raise NotImplementedError

    def __enter__(self) -> Self:
        self._server = self._make_server().start()
        return self

    def __exit__(self, *exc: object) -> None:
        assert self._server is not None
        self._server.stop()


@dataclass(frozen=True)
class Cert:
    """A self-signed certificate (``pem``) and its key, valid for ``days``."""

    pem: Path
    key: Path
    days: int

    @property
    def server(self) -> ssl.SSLContext:
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.load_cert_chain(self.pem, self.key)
        return ctx

    @property
    def client(self) -> ssl.SSLContext:
        """A client context that trusts this certificate only."""
        return ssl.create_default_context(cafile=str(self.pem))


def make_cert(folder: Path, days: int = 1) -> Cert:
    """``<folder>/cert.pem`` and ``key.pem``: self-signed for localhost and 127.0.0.1."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")])
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=days))
        .add_extension(
            x509.SubjectAlternativeName(
                [x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]
            ),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    folder.mkdir(parents=True, exist_ok=True)
    pem, key_file = folder / "cert.pem", folder / "key.pem"
    pem.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_file.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return Cert(pem, key_file, days)
