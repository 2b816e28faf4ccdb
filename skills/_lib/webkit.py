"""What the bundled web skills share (standard library only).

Every request goes through http-request's own fetcher (``skills/http-request/fetch.py``),
imported, not copied: the same allowlist, private-address refusal, checked redirects and
size and time caps. Two kinds of destination:

- a URL the *model* chose (an uptime target, a page to read): :func:`allowlist` builds
  the policy from ``NEXFLOW_HTTP_ALLOW``, exactly as http-request does;
- an endpoint the *admin* configured (``HA_URL``, ``SEARXNG_URL``, ``OPEN_METEO_URL``...):
  :func:`configured` trusts that one host at any address (a home server on the LAN is
  normal), and nothing else, so a redirect elsewhere is still refused.

Errors come out as :class:`skillkit.Refused` / :class:`skillkit.Failed` /
``TimeoutError`` with a one-line reason, never a traceback.
"""

from __future__ import annotations

import http.client
import json
import socket
import ssl
import sys
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from email.message import Message
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

_HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(_HERE))
sys.path.insert(0, str(_HERE.parent / "http-request"))

import fetch as _fetch  # noqa: E402  (http-request's program; its main() is guarded)
import skillkit  # noqa: E402

USER_AGENT = "Mozilla/5.0 (compatible; Nexflow/1.0; +https://github.com/nexflow/nexflow)"
MAX_BYTES = _fetch.MAX_BYTES_LIMIT
MAX_TIMEOUT = _fetch.TIMEOUT_LIMIT
Policy = _fetch.Policy


@dataclass(frozen=True)
class Response:
    """One answer: final URL, status, lower-cased headers, body bytes, time taken."""

    url: str
    status: int
    headers: dict[str, str]
    body: bytes
    redirects: list[str] = field(default_factory=list)
    elapsed_ms: float = 0.0

    @property
    def content_type(self) -> str:
        return self.headers.get("content-type", "").split(";")[0].strip().lower()

    def text(self, fallback: str = "utf-8") -> str:
        msg = Message()
        msg["content-type"] = self.headers.get("content-type", "text/plain")
        charset = msg.get_content_charset() or fallback
        try:
            return self.body.decode(charset, errors="replace")
        except LookupError:  # an unknown charset name
            return self.body.decode(fallback, errors="replace")

    def json(self, service: str) -> Any:
        try:
            return json.loads(self.body)
        except ValueError:
            raise skillkit.Failed(f"{service} did not answer with JSON") from None


def allowlist(narrow: object = None) -> Any:
    """The policy for URLs the model chose: ``NEXFLOW_HTTP_ALLOW``, optionally narrowed."""
    text = skillkit.env("NEXFLOW_HTTP_ALLOW")
    try:
        return _fetch.Policy(text, narrow)
    except _fetch.Refused as e:
        raise skillkit.Refused(str(e)) from None


def check_url(url: str, policy: Any) -> None:
    """Refuse ``url`` now, before any request, unless it is http(s) to an allowed host."""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise skillkit.Refused(f"{url[:200]!r} is not an http(s) URL")
    try:
        policy.check_host(parts.hostname.lower().rstrip("."))
    except _fetch.Refused as e:
        raise skillkit.Refused(str(e)) from None


def configured(name: str, default: str | None = None) -> tuple[str, Any]:
    """``(url, policy)`` for an endpoint the admin set in variable ``name``."""
    url = skillkit.env(name, default).rstrip("/")
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise skillkit.Refused(f"{name} must be an http(s) URL, not {url[:100]!r}")
    host = parts.hostname.lower().rstrip(".")
    return url, _fetch.Policy(f"{host} 0.0.0.0/0 ::/0", None)


def request(
    url: str,
    policy: Any,
    *,
    method: str = "GET",
    headers: Mapping[str, str] | None = None,
    json_body: Any = None,
    form: str | None = None,
    max_bytes: int = 256 * 1024,
    timeout: float = 10.0,
) -> Response:
    """One request through http-request's fetcher; errors become skillkit's."""
    sent = {"User-Agent": USER_AGENT, "Accept": "*/*", **(headers or {})}
    args: dict[str, Any] = {
        "url": url,
        "method": method,
        "headers": sent,
        "max_bytes": min(max_bytes, MAX_BYTES),
        "timeout_sec": min(timeout, MAX_TIMEOUT),
    }
    if json_body is not None:
        args["json"] = json_body
    elif form is not None:
        args["body"] = form
        sent["Content-Type"] = "application/x-www-form-urlencoded"
    host = urlsplit(url).hostname or url
    started = time.monotonic()
    try:
        final, resp, data, hops = _fetch.fetch(args, policy)
    except _fetch.Refused as e:
        raise skillkit.Refused(str(e)) from None
    except _fetch.Failed as e:
        raise skillkit.Failed(str(e)) from None
    except TimeoutError:
        raise TimeoutError(f"{host} did not answer within {args['timeout_sec']:g} s") from None
    except (OSError, http.client.HTTPException) as e:
        raise skillkit.Failed(f"{host}: {describe(e)}") from None
    elapsed = (time.monotonic() - started) * 1000
    kept = {k.lower(): v[:1000] for k, v in resp.getheaders()[: _fetch.KEPT_HEADERS]}
    return Response(final, resp.status, kept, data, hops, elapsed)


def describe(error: BaseException) -> str:
    """A short, human reason for a network error (no traceback, no repr noise)."""
    if isinstance(error, ssl.SSLCertVerificationError):
        return f"TLS certificate not trusted ({error.verify_message})"
    if isinstance(error, ssl.SSLError):
        return f"TLS failed ({error.reason or error.__class__.__name__})"
    if isinstance(error, ConnectionRefusedError):
        return "connection refused"
    if isinstance(error, ConnectionResetError):
        return "connection reset"
    if isinstance(error, http.client.RemoteDisconnected):
        return "the server closed the connection without answering"
    if isinstance(error, http.client.HTTPException):
        return f"bad HTTP answer ({error.__class__.__name__})"
    return getattr(error, "strerror", None) or error.__class__.__name__


def tls_expiry(
    host: str, port: int, policy: Any, timeout: float, context: ssl.SSLContext | None = None
) -> float:
    """When ``host``'s certificate expires (epoch seconds), after a verified handshake.

    The address is resolved and checked by the same policy as the request itself.
    """
    try:
        family, sockaddr = _fetch.resolve(host, port, policy)[0]
    except _fetch.Refused as e:
        raise skillkit.Refused(str(e)) from None
    except _fetch.Failed as e:
        raise skillkit.Failed(str(e)) from None
    ctx = context or ssl.create_default_context()
    try:
        with socket.socket(family, socket.SOCK_STREAM) as raw:
            raw.settimeout(timeout)
            raw.connect(sockaddr)
            with ctx.wrap_socket(raw, server_hostname=host) as tls:
                cert = tls.getpeercert()
    except TimeoutError:
        raise TimeoutError(f"TLS handshake with {host} took over {timeout:g} s") from None
    except OSError as e:
        raise skillkit.Failed(f"{host}: {describe(e)}") from None
    not_after = (cert or {}).get("notAfter")
    if not isinstance(not_after, str):
        raise skillkit.Failed(f"{host}: the certificate has no expiry date")
    return float(ssl.cert_time_to_seconds(not_after))


def clip(text: object, limit: int) -> str:
    """``text`` as a string of at most ``limit`` characters (an ellipsis marks a cut)."""
    value = "" if text is None else str(text)
    return value if len(value) <= limit else value[: limit - 1] + "…"
