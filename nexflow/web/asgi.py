"""Pure ASGI middleware: the browser guard (Host, Origin, JSON bodies, security headers),
bearer-token auth and caller identity, no tokens in URLs, request body limit.

The checks and why are in docs/security.md.
"""

from __future__ import annotations

import hmac
import json
from collections.abc import Awaitable, Callable, Mapping, MutableMapping
from typing import Any

from nexflow.web.browser import BrowserPolicy, csp_host, is_loopback_name
from nexflow.web.hooks import self_authenticated
from nexflow.web.identity import CALLER_KEY, WebCaller

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

# Pages (they read the token from session storage and send it with their API calls).
PUBLIC_PATHS = frozenset({"/", "/patches", "/health", "/ready", "/favicon.ico"})
_URL_TOKEN_KEYS = (b"token=", b"access_token=", b"api_key=", b"auth=")
STATE_CHANGING = frozenset({"POST", "PUT", "PATCH", "DELETE"})
# Endpoints that act as the owner whoever calls (MCP runs skills with the owner's
# permissions; metrics and pairing are the whole gateway's): web users get 403. Statistics
# answer each caller for themselves (routes_statistics.py; ?all=true is the owner's).
# /mcp is not here: it serves each caller their own panel tools with their role's skill
# permissions (app.py, ``mcp_caller``).
OWNER_ONLY = ("/metrics", "/api/v1/metrics", "/api/v1/pairing")
CLOSE_FORBIDDEN = 4403
_CSP = (
    "default-src 'self'; script-src 'self' 'unsafe-inline'; style-src 'self' 'unsafe-inline'; "
    "img-src 'self' data:; connect-src 'self'{ws}; frame-ancestors 'none'; base-uri 'none'; "
    "form-action 'self'; object-src 'none'"
)
_SECURITY_HEADERS = (
    (b"x-frame-options", b"DENY"),
    (b"x-content-type-options", b"nosniff"),
    (b"referrer-policy", b"no-referrer"),
)


class Authenticator:
    """Identifies the caller: ``Authorization: Bearer <gateway token>`` is the owner, a
    token from ``web.users`` is that user; with no gateway token configured a loopback
    request without a token is the owner (the server then refuses to bind anywhere but
    loopback). Tokens are compared in constant time."""

    def __init__(self, token: str | None, users: Mapping[str, str] | None = None) -> None:
        self._token = token.encode() if token else None
        self._users = tuple((name, secret.encode()) for name, secret in (users or {}).items())

    @property
    def enabled(self) -> bool:
        """A gateway token is configured (every API request needs a token)."""
        return self._token is not None

    def identify_header(self, value: bytes | None, *, loopback: bool = True) -> WebCaller | None:
        """The caller an ``Authorization`` header value names; None: refuse (401)."""
        token: bytes | None = None
        if value and value[:7].lower() == b"bearer ":
            token = value[7:].strip() or None
        return self._identify(token, loopback)

    def identify_token(self, token: str | None, *, loopback: bool = True) -> WebCaller | None:
        """The caller a bare token names (a WebSocket's first ``{"type": "auth"}`` frame);
        None: refuse."""
        return self._identify(token.encode() if token else None, loopback)

    def _identify(self, token: bytes | None, loopback: bool) -> WebCaller | None:
        if token is None:
            return WebCaller.owner("loopback") if self._token is None and loopback else None
        if self._token is not None and hmac.compare_digest(token, self._token):
            return WebCaller.owner("token")
        found = None
        for name, secret in self._users:  # no early exit: the time says nothing about a name
            if hmac.compare_digest(token, secret) and found is None:
                found = name
        if found is not None:
            return WebCaller.user(found)
        if self._token is None and not self._users and loopback:
            # No token is configured at all: a client that must send some API key (the
            # OpenAI SDKs refuse an empty one) is the loopback owner, as without a header.
            return WebCaller.owner("loopback")
        return None

    def check_header(self, value: bytes | None) -> bool:
        """Whether the header names the owner (for endpoints that act only as the owner;
        use :meth:`identify_header` to serve web users too)."""
        caller = self.identify_header(value)
        return caller is not None and caller.role == "owner"

    def check_token(self, token: str | None) -> bool:
        """Whether the token is the owner's (see :meth:`check_header`)."""
        caller = self.identify_token(token)
        return caller is not None and caller.role == "owner"


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


def _is_json(content_type: bytes | None) -> bool:
    if content_type is None:
        return False
    media = content_type.split(b";", 1)[0].strip().lower()
    kind, _, sub = media.partition(b"/")
    return kind == b"application" and (sub == b"json" or sub.endswith(b"+json"))


def _client_is_loopback(scope: Scope) -> bool:
    client = scope.get("client")
    if not client:  # a Unix socket: local by definition
        return True
    return is_loopback_name(str(client[0]).lower())


class GuardMiddleware:
    """In order: refuses a foreign ``Host`` (421), a foreign ``Origin`` on state-changing
    requests and WebSocket handshakes (403; a WebSocket is closed with 4403 before it is
    accepted), tokens in query strings (400), callers without a valid token on HTTP API
    paths (401), web users on ``OWNER_ONLY`` paths (403), bodies over ``max_body`` bytes
    (413) and API bodies that are not JSON (415). Sets ``scope["state"]["nexflow_caller"]``;
    adds security headers to every HTTP response. WebSockets without an ``Authorization``
    header authenticate in the endpoint (browsers cannot set headers on them)."""

    def __init__(
        self, app: ASGIApp, auth: Authenticator, max_body: int, policy: BrowserPolicy
    ) -> None:
        self._app = app
        self._auth = auth
        self._max_body = max_body
        self._policy = policy

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        kind = scope["type"]
        if kind not in ("http", "websocket"):
            return await self._app(scope, receive, send)
        headers: dict[bytes, bytes] = dict(scope.get("headers") or ())
        if kind == "http":
            send = self._with_headers(scope, headers, send)
            if self_authenticated(scope["path"]):  # e.g. Telegram's webhook: its own secret
                return await self._self_authenticated(scope, receive, send, headers)
        refusal = self._browser_refusal(scope, headers) or _token_in_url(scope)
        if refusal is not None:
            if kind == "websocket":
                code = 4400 if refusal[0] == 400 else CLOSE_FORBIDDEN
                await send({"type": "websocket.close", "code": code})
                return None
            return await _json_error(send, *refusal)
        loopback = _client_is_loopback(scope)
        if kind == "websocket":
            if b"authorization" in headers or not self._auth.enabled:
                caller = self._auth.identify_header(
                    headers.get(b"authorization"), loopback=loopback
                )
                if caller is not None:
                    scope.setdefault("state", {})[CALLER_KEY] = caller
            return await self._app(scope, receive, send)
        return await self._http(scope, receive, send, headers, loopback)

    async def _self_authenticated(
        self, scope: Scope, receive: Receive, send: Send, headers: dict[bytes, bytes]
    ) -> None:
        """A route that checks its caller itself (:mod:`nexflow.web.hooks`): only the Host
        check, no token in the URL and the body cap apply here."""
        raw_host = headers.get(b"host")
        host = raw_host.decode("latin-1") if raw_host is not None else None
        if not self._policy.host_allowed(host):
            return await _json_error(
                send, 421, "forbidden_host", f"This gateway does not answer to {host!r}."
            )
        if (refusal := _token_in_url(scope)) is not None:
            return await _json_error(send, *refusal)
        length = headers.get(b"content-length")
        if length is not None and length.isdigit() and int(length) > self._max_body:
            return await _json_error(
                send, 413, "too_large", f"The request body is larger than {self._max_body} bytes."
            )
        return await self._app(scope, self._limited(receive), send)

    async def _http(
        self,
        scope: Scope,
        receive: Receive,
        send: Send,
        headers: dict[bytes, bytes],
        loopback: bool,
    ) -> None:
        path: str = scope["path"]
        caller = self._auth.identify_header(headers.get(b"authorization"), loopback=loopback)
        if caller is not None and caller.role != "owner" and path.startswith(OWNER_ONLY):
            return await _json_error(
                send, 403, "owner_only", "Only the owner (the gateway token) may use this endpoint."
            )
        if caller is not None:
            scope.setdefault("state", {})[CALLER_KEY] = caller
        elif path not in PUBLIC_PATHS and not path.startswith("/static/"):
            message = (
                "Send 'Authorization: Bearer <gateway token>'."
                if self._auth.enabled or loopback
                else "No gateway token is set, so only loopback clients are served; set "
                "NEXFLOW_GATEWAY_TOKEN (web.token) and send it as 'Authorization: Bearer ...'."
            )
            return await _json_error(
                send, 401, "unauthorized", message, [(b"www-authenticate", b"Bearer")]
            )
        length = headers.get(b"content-length")
        if length is not None and length.isdigit() and int(length) > self._max_body:
            return await _json_error(
                send, 413, "too_large", f"The request body is larger than {self._max_body} bytes."
            )
        if (
            scope["method"] in STATE_CHANGING
            and path.startswith(("/api/", "/v1/"))
            and _has_body(headers)
            and not _is_json(headers.get(b"content-type"))
        ):
            return await _json_error(
                send,
                415,
                "unsupported_media_type",
                "API bodies must be JSON: send 'Content-Type: application/json' "
                "(curl -H 'Content-Type: application/json' -d '{...}').",
            )
        return await self._app(scope, self._limited(receive), send)

    def _browser_refusal(
        self, scope: Scope, headers: dict[bytes, bytes]
    ) -> tuple[int, str, str] | None:
        raw_host = headers.get(b"host")
        host = raw_host.decode("latin-1") if raw_host is not None else None
        if not self._policy.host_allowed(host):
            return (
                421,
                "forbidden_host",
                f"This gateway does not answer to the host {host!r}. If that is its public "
                "name, add it to web.public_hosts in config.yml (or set web.public_url).",
            )
        origin = headers.get(b"origin")
        if scope["type"] == "http" and scope["method"] not in STATE_CHANGING:
            return None
        if origin is not None:
            if self._policy.origin_allowed(origin.decode("latin-1"), host):
                return None
            return (
                403,
                "forbidden_origin",
                f"Requests from the page at {origin.decode('latin-1')!r} are refused. If that "
                "page is yours, add its origin to web.allowed_origins in config.yml.",
            )
        if headers.get(b"sec-fetch-site", b"").lower() == b"cross-site":
            return (
                403,
                "forbidden_origin",
                "Cross-site requests are refused. If the page is yours, send its Origin and add "
                "it to web.allowed_origins in config.yml.",
            )
        return None

    def _with_headers(self, scope: Scope, headers: dict[bytes, bytes], send: Send) -> Send:
        # Every page has the policy, /docs too: its Swagger UI is served from the package.
        extra = list(_SECURITY_HEADERS)
        raw = headers.get(b"host")
        host = csp_host(raw.decode("latin-1")) if raw is not None else None
        ws = f" ws://{host} wss://{host}" if host else ""
        extra.append((b"content-security-policy", _CSP.format(ws=ws).encode()))

        async def wrapped(message: Message) -> None:
            if message["type"] == "http.response.start":
                present = {name.lower() for name, _ in message.get("headers") or ()}
                added = [(k, v) for k, v in extra if k not in present]
                message = {**message, "headers": [*(message.get("headers") or ()), *added]}
            await send(message)

        return wrapped

    def _limited(self, receive: Receive) -> Receive:
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


def _token_in_url(scope: Scope) -> tuple[int, str, str] | None:
    query: bytes = scope.get("query_string", b"").lower()
    if not any(key in query for key in _URL_TOKEN_KEYS):
        return None
    return (
        400,
        "token_in_url",
        "Tokens are never accepted in URLs; send 'Authorization: Bearer <token>'.",
    )


def _has_body(headers: Mapping[bytes, bytes]) -> bool:
    length = headers.get(b"content-length")
    if length is not None:
        return not length.strip().isdigit() or int(length) > 0
    return b"chunked" in headers.get(b"transfer-encoding", b"").lower()


class BodyTooLarge(Exception):
    def __init__(self, limit: int) -> None:
        super().__init__(f"request body larger than {limit} bytes")
        self.limit = limit
