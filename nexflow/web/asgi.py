"""Pure ASGI middleware: bearer-token auth, no tokens in URLs, request body limit."""

from __future__ import annotations

import hmac
import json
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

# Pages (they read the token from session storage and send it with their API calls).
PUBLIC_PATHS = frozenset({"/", "/patches", "/health", "/ready", "/favicon.ico"})
_URL_TOKEN_KEYS = (b"token=", b"access_token=", b"api_key=", b"auth=")


class Authenticator:
    """Checks ``Authorization: Bearer <token>``; with no token configured, everything passes
    (the server then refuses to bind anywhere but loopback)."""

    def __init__(self, token: str | None) -> None:
        self._token = token.encode() if token else None

    @property
    def enabled(self) -> bool:
        return self._token is not None

    def check_header(self, value: bytes | None) -> bool:
        if self._token is None:
            return True
        if not value or not value.lower().startswith(b"bearer "):
            return False
        return hmac.compare_digest(value[7:].strip(), self._token)

    def check_token(self, token: str | None) -> bool:
        if self._token is None:
            return True
        return token is not None and hmac.compare_digest(token.encode(), self._token)


async def _json_error(
    send: Send,
    status: int,
    code: str,
    message: str,
    headers: list[tuple[bytes, bytes]] | None = None,
) -> None:
    body = json.dumps({"error": {"code": code, "message": message}}).encode()
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(body)).encode()),
                *(headers or []),
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})


class GuardMiddleware:
    """Refuses tokens in query strings; requires the bearer token on HTTP API paths;
    caps request bodies at ``max_body`` bytes. WebSockets authenticate in the endpoint
    (browsers cannot set headers on them)."""

    def __init__(self, app: ASGIApp, auth: Authenticator, max_body: int) -> None:
        self._app = app
        self._auth = auth
        self._max_body = max_body

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] not in ("http", "websocket"):
            return await self._app(scope, receive, send)
        query: bytes = scope.get("query_string", b"").lower()
        if any(key in query for key in _URL_TOKEN_KEYS):
            if scope["type"] == "websocket":
                await send({"type": "websocket.close", "code": 4400})
                return None
            return await _json_error(
                send,
                400,
                "token_in_url",
                "Tokens are never accepted in URLs; send 'Authorization: Bearer <token>'.",
            )
        if scope["type"] == "websocket":
            return await self._app(scope, receive, send)
        path: str = scope["path"]
        if path not in PUBLIC_PATHS and not path.startswith("/static/") and self._auth.enabled:
            header = dict(scope.get("headers") or ()).get(b"authorization")
            if not self._auth.check_header(header):
                return await _json_error(
                    send,
                    401,
                    "unauthorized",
                    "Send 'Authorization: Bearer <gateway token>'.",
                    [(b"www-authenticate", b"Bearer")],
                )
        length = dict(scope.get("headers") or ()).get(b"content-length")
        if length is not None and length.isdigit() and int(length) > self._max_body:
            return await _json_error(
                send, 413, "too_large", f"The request body is larger than {self._max_body} bytes."
            )
        return await self._app(scope, self._limited(receive, send), send)

    def _limited(self, receive: Receive, send: Send) -> Receive:
        seen = 0
        limit = self._max_body

        async def wrapped() -> Message:
            nonlocal seen
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > limit:
                    raise BodyTooLarge(limit)
            return message

        return wrapped


class BodyTooLarge(Exception):
    def __init__(self, limit: int) -> None:
        super().__init__(f"request body larger than {limit} bytes")
        self.limit = limit
