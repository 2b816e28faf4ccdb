"""The outbound webhook connector: each outbound is one signed JSON POST to ``url``.

Body: ``{"kind", "chat_id", "session_id", "reply_to", "text", ...}`` — the outbound's own
fields (``model_dump(mode="json")``) with ``text`` always its plain-text rendering
(:func:`~nexflow.bus.events.as_text`). Headers: ``X-Nexflow-Timestamp`` (Unix seconds, new
on every attempt), ``X-Nexflow-Signature: sha256=<hex HMAC-SHA256(secret, "<ts>.<body>")>``
(the inbound ``hmac`` scheme, :func:`nexflow.hooks.signatures.sign_hmac`) and
``X-Nexflow-Delivery``: the SHA-256 of the body, the same on every retry of a message.

A 2xx answer delivers it. Everything else is raised as :class:`DeliveryError` for the
outbox: 5xx, 408, 429, timeouts and connection errors are retried (``Retry-After`` is
honoured); other answers (3xx, 4xx) will not change on a retry and fail the message.
Outbound only: ``events`` yields nothing (inbound webhooks are ``/api/v1/hooks/{name}``).
"""

from __future__ import annotations

import email.utils
import hashlib
import json
import math
import time
from collections.abc import AsyncIterator

import aiohttp

from connectors.webhook.config import WebhookConfig
from connectors.webhook.manifest import MANIFEST
from nexflow.bus.events import InboundEvent, Outbound, as_text
from nexflow.gateway.connector import ConnectorManifest, DeliveryError
from nexflow.hooks.signatures import sign_hmac

__all__ = ["WebhookConnector", "payload"]

_RETRYABLE_4XX = frozenset({408, 429})
_MAX_RETRY_AFTER_S = 3600.0  # a receiver cannot hold a message back for longer per attempt


def payload(out: Outbound) -> bytes:
    """The exact bytes POSTed (and signed) for ``out``."""
    fields = out.model_dump(mode="json")
    head = {
        "kind": fields.pop("kind"),
        "chat_id": fields.pop("chat_id"),
        "session_id": fields.pop("session_id"),
        "reply_to": fields.pop("reply_to"),
        "text": as_text(out),
    }
    fields.pop("text", None)  # a panel's own text is part of the rendering above
    body = {**head, **fields}
    return json.dumps(body, ensure_ascii=False, separators=(",", ":")).encode()


def retry_after(header: str | None, now: float) -> float | None:
    """``Retry-After`` as seconds from now (delta seconds or an HTTP date), capped."""
    if not header:
        return None
    value = header.strip()
    try:
        seconds = float(value)
    except ValueError:
        try:
            seconds = email.utils.parsedate_to_datetime(value).timestamp() - now
        except (TypeError, ValueError):
            return None
    if not math.isfinite(seconds) or seconds <= 0:
        return None
    return min(seconds, _MAX_RETRY_AFTER_S)


class WebhookConnector:
    def __init__(self, config: WebhookConfig) -> None:
        self._config = config
        self._session: aiohttp.ClientSession | None = None

    @property
    def manifest(self) -> ConnectorManifest:
        return MANIFEST

    async def start(self) -> None:
        if self._session is None:
            self._session = aiohttp.ClientSession(
                timeout=aiohttp.ClientTimeout(total=self._config.timeout_s),
                headers=self._config.headers,
            )

    async def stop(self) -> None:
        session, self._session = self._session, None
        if session is not None:
            await session.close()

    async def events(self) -> AsyncIterator[InboundEvent]:
        return  # outbound only
        yield

    async def send(self, out: Outbound) -> None:
        session = self._session
        if session is None:
            raise DeliveryError("webhook connector is not started")
        body = payload(out)
        timestamp = str(int(time.time()))
        headers = {
            "Content-Type": "application/json",
            "X-Nexflow-Timestamp": timestamp,
            "X-Nexflow-Signature": sign_hmac(
                self._config.secret.get_secret_value(), timestamp, body
            ),
            "X-Nexflow-Delivery": hashlib.sha256(body).hexdigest(),
        }
        try:
            async with session.post(
                self._config.url, data=body, headers=headers, allow_redirects=False
            ) as response:
                status = response.status
                wait = retry_after(response.headers.get("Retry-After"), time.time())
        except TimeoutError as exc:
            raise DeliveryError(f"webhook timed out after {self._config.timeout_s:g} s") from exc
        except (aiohttp.ClientError, OSError) as exc:
            raise DeliveryError(f"webhook unreachable ({type(exc).__name__})") from exc
        if 200 <= status < 300:
            return
        if status >= 500 or status in _RETRYABLE_4XX:
            raise DeliveryError(f"webhook answered HTTP {status}", retry_after_s=wait)
        hint = " (a redirect: set url to its target)" if 300 <= status < 400 else ""
        raise DeliveryError(f"webhook answered HTTP {status}{hint}", retryable=False)
