"""The three signature schemes of inbound webhooks; every comparison in constant time.

- ``github``: ``X-Hub-Signature-256: sha256=<hex HMAC-SHA256 of the raw body>``; the
  delivery id is ``X-GitHub-Delivery``, the event ``X-GitHub-Event``.
- ``gitlab``: ``X-Gitlab-Token: <secret>``; the delivery id is ``X-Gitlab-Event-UUID``,
  the event ``X-Gitlab-Event``.
- ``hmac``: ``X-Nexflow-Signature: sha256=<hex HMAC-SHA256 of "<ts>.<raw body>">`` with
  ``X-Nexflow-Timestamp: <ts>`` (Unix seconds) within the hook's window of now; the
  delivery id is the timestamp and signature (a replay of the same request), the event
  the optional ``X-Nexflow-Event``.

GitHub's and GitLab's delivery headers are not signed, so the body's digest is remembered
too: re-sending a captured body under a new delivery id is still a duplicate.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Literal

from nexflow.hooks import SignatureError

Scheme = Literal["github", "gitlab", "hmac"]
_PREFIX = "sha256="


@dataclass(frozen=True, slots=True)
class Verified:
    """A request the hook's secret vouches for: its event (if the sender names one) and
    the keys under which it is remembered for replay protection."""

    event: str | None
    delivery_keys: tuple[str, ...]


def _hex_hmac(secret: bytes, data: bytes) -> str:
    return hmac.new(secret, data, hashlib.sha256).hexdigest()


def _signature_ok(header: str | None, expected_hex: str) -> bool:
    if header is None or not header.startswith(_PREFIX):
        return False
    given = header[len(_PREFIX) :].strip().lower().encode("ascii", "replace")
    return hmac.compare_digest(given, expected_hex.encode())


def verify(
    scheme: Scheme,
    secret: str,
    headers: Mapping[str, str],
    body: bytes,
    *,
    now: float,
    window_s: float,
) -> Verified:
    """Check the request's signature; raise :class:`SignatureError` if it is not the
    hook's. ``headers`` must be case-insensitive (Starlette's ``Headers`` are)."""
    key = secret.encode()
    digest = "body:" + hashlib.sha256(body).hexdigest()
    if scheme == "github":
        if not _signature_ok(headers.get("x-hub-signature-256"), _hex_hmac(key, body)):
            raise SignatureError("missing or wrong X-Hub-Signature-256")
        delivery = headers.get("x-github-delivery")
        keys = (f"id:{delivery[:200]}", digest) if delivery else (digest,)
        return Verified(headers.get("x-github-event"), keys)
    if scheme == "gitlab":
        token = headers.get("x-gitlab-token", "").encode("utf-8", "replace")
        if not hmac.compare_digest(token, key):
            raise SignatureError("missing or wrong X-Gitlab-Token")
        delivery = headers.get("x-gitlab-event-uuid")
        keys = (f"id:{delivery[:200]}", digest) if delivery else (digest,)
        return Verified(headers.get("x-gitlab-event"), keys)
    raw_ts = headers.get("x-nexflow-timestamp", "").strip()
    signature = headers.get("x-nexflow-signature")
    expected = _hex_hmac(key, raw_ts.encode("utf-8", "replace") + b"." + body)
    if not _signature_ok(signature, expected):
        raise SignatureError("missing or wrong X-Nexflow-Signature")
    try:
        ts = float(raw_ts)
    except ValueError:
        raise SignatureError("X-Nexflow-Timestamp is not a number of seconds") from None
    if not abs(now - ts) <= window_s:  # also refuses nan and inf
        raise SignatureError(f"X-Nexflow-Timestamp is more than {window_s:.0f} s from now")
    return Verified(headers.get("x-nexflow-event"), (f"ts:{raw_ts}.{expected}",))


def sign_hmac(secret: str, timestamp: str, body: bytes) -> str:
    """The ``hmac`` scheme's ``X-Nexflow-Signature`` for ``body`` sent at ``timestamp``
    (Unix seconds, as sent in ``X-Nexflow-Timestamp``): what :func:`verify` accepts.
    Outbound webhooks (``connectors/webhook``) sign with it."""
    return _PREFIX + _hex_hmac(secret.encode(), timestamp.encode() + b"." + body)
