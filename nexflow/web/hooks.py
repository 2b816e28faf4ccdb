"""HTTP routes that plugins (connectors) add to the gateway's own web app.

A connector that must be reachable by its platform (Telegram's webhook) implements
:class:`ServesWeb`; the composition root collects its :class:`WebRoute` values into
``WebServices.routes`` and ``create_app`` mounts each one. Such a route is called by
another service with that service's own credential, not by a browser or an API client:
it lives under one of :data:`SELF_AUTHENTICATED` prefixes, which the guard
(:mod:`nexflow.web.asgi`) exempts from the gateway's bearer token and the browser
checks (Origin, JSON bodies), and the route checks its caller itself, in constant time.
The Host check and the body-size cap still apply.

Dependency-free on purpose: a connector imports it without pulling in FastAPI.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, MutableMapping
from dataclasses import dataclass
from typing import Any, Protocol, runtime_checkable

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

# Path prefixes of routes that authenticate their caller themselves (see above); inbound
# webhooks check the hook's signature (nexflow.web.routes_hooks).
SELF_AUTHENTICATED: tuple[str, ...] = ("/telegram/", "/api/v1/hooks/")


def self_authenticated(path: str) -> bool:
    """The path belongs to a route that checks its own caller (the guard skips its
    token, Origin and JSON-body checks there)."""
    return path.startswith(SELF_AUTHENTICATED)


@dataclass(frozen=True, slots=True)
class WebRoute:
    """A pure ASGI app served at exactly ``path`` (any method; the app answers 405 itself)."""

    path: str
    app: ASGIApp

    def __post_init__(self) -> None:
        if not self_authenticated(self.path):
            raise ValueError(
                f"a plugin route must live under {' or '.join(SELF_AUTHENTICATED)}, "
                f"not at {self.path!r}"
            )


@runtime_checkable
class ServesWeb(Protocol):
    """A connector that needs routes on the gateway's HTTP server."""

    def web_routes(self) -> tuple[WebRoute, ...]: ...
