"""``mode: webhook``: a pure ASGI app that takes Telegram's POSTs and feeds the connector.

The gateway serves it on its own HTTP server at ``webhook_url``'s path (the connector's
``web_routes``, mounted by ``nexflow.web.app.create_app``; the path is under
``/telegram/``, which the gateway's guard leaves to this app's own check). Telegram sends
``X-Telegram-Bot-Api-Secret-Token`` with the secret given to ``setWebhook``: anything
without it, or with another one (compared in constant time), is refused with 401 and
not read. The body is parsed as aiogram's own ``Update`` bound to the bot (what aiogram's
``SimpleRequestHandler`` does before ``Dispatcher.feed_webhook_update``) and handed to
:meth:`TelegramConnector.feed`, the same step the polling loop uses, so both modes handle
an update identically; there is no aiogram ``Dispatcher`` in this connector (see
``connector.py``). The answer is 200 once the update is queued for the gateway; 503 while
the connector is not connected yet (Telegram re-sends on any status but 200, and the
inbox drops a repeat by its ``external_id``).
"""

from __future__ import annotations

import hmac
from collections.abc import Awaitable, Callable, MutableMapping
from typing import TYPE_CHECKING, Any

from aiogram.types import Update
from pydantic import ValidationError

if TYPE_CHECKING:
    from connectors.telegram.connector import TelegramConnector

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]

MAX_BODY = 1024 * 1024
_HEADER = b"x-telegram-bot-api-secret-token"


class WebhookApp:
    def __init__(self, connector: TelegramConnector, secret: str) -> None:
        self._connector = connector
        self._secret = secret.encode()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return
        if scope["method"] != "POST":
            await _respond(send, 405)
            return
        headers = dict(scope.get("headers") or [])
        if not self._secret or not hmac.compare_digest(headers.get(_HEADER, b""), self._secret):
            await _respond(send, 401)
            return
        if not self._connector.ready:
            await _respond(send, 503)
            return
        body = b""
        more = True
        while more:
            message = await receive()
            if message["type"] == "http.disconnect":
                return
            body += message.get("body", b"")
            more = bool(message.get("more_body"))
            if len(body) > MAX_BODY:
                await _respond(send, 413)
                return
        try:
            update = Update.model_validate_json(body, context={"bot": self._connector.bot})
        except ValidationError:
            await _respond(send, 400)
            return
        await self._connector.feed(update)
        await _respond(send, 200)


async def _respond(send: Send, status: int) -> None:
    await send(
        {"type": "http.response.start", "status": status, "headers": [(b"content-length", b"0")]}
    )
    await send({"type": "http.response.body", "body": b""})
