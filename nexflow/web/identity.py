"""Who is calling the web API: the owner or a configured web user (``web.users``).

The guard (:class:`nexflow.web.asgi.GuardMiddleware`) identifies the caller of every
authenticated HTTP request and stores it in ``scope["state"]["nexflow_caller"]``;
WebSocket endpoints that authenticate with a first frame use
:meth:`nexflow.web.asgi.Authenticator.identify_token`. Routes read the caller with
:func:`caller_of` and the caller's unified user id with :func:`web_user`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal

from starlette.requests import HTTPConnection

if TYPE_CHECKING:
    from nexflow.web.app import WebServices

CALLER_KEY = "nexflow_caller"
OWNER_SENDER = "owner"
USER_PREFIX = "user:"


@dataclass(frozen=True, slots=True)
class WebCaller:
    """An authenticated web caller. ``sender_id`` is what the web channel publishes as
    the sender: ``"owner"``, or ``"user:<name>"`` for a user from ``web.users``."""

    sender_id: str
    role: Literal["owner", "user"]
    via: Literal["token", "loopback", "user_token"]

    @property
    def name(self) -> str:
        return self.sender_id.removeprefix(USER_PREFIX)

    @classmethod
    def owner(cls, via: Literal["token", "loopback"]) -> WebCaller:
        return cls(OWNER_SENDER, "owner", via)

    @classmethod
    def user(cls, name: str) -> WebCaller:
        return cls(USER_PREFIX + name, "user", "user_token")


class NoCaller(RuntimeError):
    """A route asked for the caller of a request the guard did not identify (a public
    path, or the guard is not installed): a programming error, answered 500."""


def caller_of(conn: HTTPConnection) -> WebCaller:
    """The caller the guard identified for this request or WebSocket."""
    state = conn.scope.get("state") or {}
    caller = state.get(CALLER_KEY)
    if not isinstance(caller, WebCaller):
        raise NoCaller(f"no authenticated caller for {conn.url.path}")
    return caller


async def web_user(conn: HTTPConnection) -> str:
    """The caller's unified Nexflow user id (created on first use, like the web channel's
    identity step does)."""
    caller = caller_of(conn)
    services: WebServices = conn.app.state.services
    found = await services.storage.find_user("web", caller.sender_id)
    if found is not None:
        return found[0]
    return await services.storage.create_user(caller.name, caller.role, "web", caller.sender_id)
