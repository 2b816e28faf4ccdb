"""A fake Telegram Bot API server on loopback: real HTTP, enough of the protocol for aiogram 3.

It answers ``getMe``, long-polling ``getUpdates`` (offset confirmation, ``timeout``, and
409 when a second poll supersedes the first), ``sendMessage`` (validates Telegram HTML and
the 4096-character limit like the real server), ``editMessageText``,
``editMessageReplyMarkup``, ``answerCallbackQuery``, ``sendChatAction``, ``sendDocument``,
``getFile`` with file download, and ``setWebhook`` / ``deleteWebhook``. Everything the bot
sends is recorded in :attr:`FakeTelegram.sent`; every call in :attr:`FakeTelegram.calls`.

Tests inject updates (:meth:`~FakeTelegram.message`, :meth:`~FakeTelegram.press`,
:meth:`~FakeTelegram.document`, :meth:`~FakeTelegram.photo`) and script faults
(:meth:`~FakeTelegram.fail`, :meth:`~FakeTelegram.stall_polls`, :attr:`~FakeTelegram.offline`,
:meth:`~FakeTelegram.block`).

This module is the server and its test-facing surface; the pieces live beside it:
:mod:`~nexflow.testing.fake_telegram_model` (HTML checks, records, errors),
:mod:`~nexflow.testing.fake_telegram_state` (chats, files, sent messages),
:mod:`~nexflow.testing.fake_telegram_updates` (injected updates, long polling) and
:mod:`~nexflow.testing.fake_telegram_methods` (the Bot API methods).

Run standalone (control routes under ``/_fake/``: ``POST message``, ``POST press``,
``GET sent``)::

    python -m nexflow.testing.fake_telegram --port 0
    # prints "listening on http://127.0.0.1:PORT"
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
from collections import defaultdict, deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from aiohttp import web

from nexflow.testing.fake_telegram_methods import BotAPI
from nexflow.testing.fake_telegram_model import (
    MAX_TEXT,
    APIError,
    Failure,
    HTMLError,
    Sent,
    error_response,
    parse_html,
    utf16_len,
)
from nexflow.testing.fake_telegram_state import BotState
from nexflow.testing.fake_telegram_updates import UpdateFeed
from nexflow.testing.serve import serve

__all__ = ["MAX_TEXT", "FakeTelegram", "HTMLError", "Sent", "main", "parse_html", "utf16_len"]


@dataclass
class FakeTelegram:
    """Start with :meth:`start`; pass :attr:`base_url` to
    ``TelegramAPIServer.from_base``."""

    token: str = "123456:TEST-token"
    username: str = "nexflow_bot"
    host: str = "127.0.0.1"
    port: int = 0
    offline: bool = False  # every request's connection is dropped, as on a network cut
    dropped: int = 0  # requests refused while offline

    def __post_init__(self) -> None:
        self._state = BotState(self.token, self.username)
        self._feed = UpdateFeed(self._state)
        self._methods = BotAPI(self._state, self._feed)
        self.calls: list[tuple[str, dict[str, Any]]] = []
        self._failures: defaultdict[str, deque[Failure]] = defaultdict(deque)
        self._runner: web.AppRunner | None = None

    # -- what the bot did --------------------------------------------------------------

    @property
    def bot_id(self) -> int:
        return self._state.bot_id

    @property
    def sent(self) -> list[Sent]:
        return self._state.sent

    @property
    def actions(self) -> list[tuple[int, str]]:
        """``sendChatAction`` calls: (chat id, action)."""
        return self._methods.actions

    @property
    def answers(self) -> list[tuple[str, str]]:
        """``answerCallbackQuery`` calls: (query id, text)."""
        return self._methods.answers

    @property
    def webhook_url(self) -> str:
        return self._feed.webhook_url

    @property
    def stalls_served(self) -> int:
        return self._feed.stalls_served

    @property
    def conflicts(self) -> int:
        """``getUpdates`` calls answered 409 Conflict (a second poller, an active webhook)."""
        return self._feed.conflicts

    # -- lifecycle ---------------------------------------------------------------------

    @property
    def base_url(self) -> str:
        return f"http://{self.host}:{self.port}"

    async def start(self) -> str:
        app = web.Application(client_max_size=64 * 1024 * 1024)
        app.router.add_route("*", "/bot{token}/{method}", self._api)
        app.router.add_get("/file/bot{token}/{path:.+}", self._file)
        app.router.add_post("/_fake/message", self._control_message)
        app.router.add_post("/_fake/press", self._control_press)
        app.router.add_get("/_fake/sent", self._control_sent)
        self._feed.open()
        self._runner, self.port = await serve(
            app, self.host, self.port, handler_cancellation=True, shutdown_timeout=1.0
        )
        return self.base_url

    async def stop(self) -> None:
        await self._feed.close()
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def __aenter__(self) -> FakeTelegram:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    # -- scripting ---------------------------------------------------------------------

    def fail(
        self,
        method: str,
        status: int = 502,
        *,
        times: int = 1,
        retry_after: int | None = None,
        description: str | None = None,
        after: int = 0,
    ) -> None:
        """After ``after`` more successful calls, the next ``times`` calls of ``method``
        (``"*"``: any method but getUpdates) fail with ``status``."""
        default = {
            429: f"Too Many Requests: retry after {retry_after}",
            403: "Forbidden: bot was blocked by the user",
            400: "Bad Request: chat not found",
            502: "Bad Gateway",
        }.get(status, "Internal Server Error")
        failures = [Failure(status, description or default, retry_after) for _ in range(times)]
        failures[0].after = after
        self._failures[method].extend(failures)

    def stall_polls(self, times: int = 1) -> None:
        """The next ``times`` getUpdates calls never answer (until the client gives up)."""
        self._feed.stalls += times

    def block(self, user_id: int) -> None:
        """The user blocked the bot: sending to their private chat answers 403."""
        self._state.blocked.add(user_id)

    # -- injecting updates -------------------------------------------------------------

    def user(
        self, user_id: int, first_name: str = "", username: str | None = None
    ) -> dict[str, Any]:
        return self._feed.user(user_id, first_name, username)

    def message(
        self,
        user_id: int,
        text: str = "",
        *,
        chat_id: int | None = None,
        reply_to: int | None = None,
        language_code: str | None = None,
        extra: dict[str, Any] | None = None,
    ) -> dict[str, Any]:
        """Inject a text message. ``chat_id`` below zero makes it a group; ``reply_to`` is
        a message id in that chat (the bot's own messages count as from the bot)."""
        return self._feed.message(
            user_id,
            text,
            chat_id=chat_id,
            reply_to=reply_to,
            language_code=language_code,
            extra=extra,
        )

    def press(self, sent: Sent, data: str, user_id: int | None = None) -> dict[str, Any]:
        """A person presses the inline button with callback ``data`` under ``sent``."""
        return self._feed.press(sent, data, user_id)

    def document(
        self,
        user_id: int,
        name: str,
        content: bytes,
        *,
        mime_type: str = "application/octet-stream",
        caption: str = "",
        chat_id: int | None = None,
    ) -> dict[str, Any]:
        return self._feed.document(
            user_id, name, content, mime_type=mime_type, caption=caption, chat_id=chat_id
        )

    def photo(
        self, user_id: int, content: bytes, *, caption: str = "", chat_id: int | None = None
    ) -> dict[str, Any]:
        return self._feed.photo(user_id, content, caption=caption, chat_id=chat_id)

    # -- waiting -----------------------------------------------------------------------

    async def wait_sent(self, count: int = 1, within: float = 5.0) -> list[Sent]:
        """Wait until at least ``count`` messages were sent in total; return all of them."""
        await self.wait_for(lambda: len(self.sent) >= count, within)
        return list(self.sent)

    async def wait_for(self, predicate: Callable[[], bool], within: float = 5.0) -> None:
        """Wait until ``predicate()`` holds; it is checked after every API call."""
        await self._feed.wait_for(predicate, within)

    def pending_updates(self) -> int:
        return len(self._feed.updates)

    # -- HTTP --------------------------------------------------------------------------

    async def _params(self, request: web.Request) -> dict[str, Any]:
        params: dict[str, Any] = dict(request.query)
        if request.content_type == "application/json":
            params.update(await request.json())
            return params
        if request.body_exists:
            form = await request.post()
            for key, value in form.items():
                params[key] = value if isinstance(value, web.FileField) else str(value)
        return params

    async def _api(self, request: web.Request) -> web.StreamResponse:
        if self.offline:
            self.dropped += 1
            self._feed.notify()
            assert request.transport is not None
            request.transport.close()
            return web.Response(status=503)  # never reaches the client
        if request.match_info["token"] != self.token:
            return error_response(401, "Unauthorized")
        method = request.match_info["method"]
        params = await self._params(request)
        self.calls.append((method, params))
        queue = self._failures.get(method) or (
            self._failures.get("*") if method != "getUpdates" else None
        )
        if queue and queue[0].after > 0:
            queue[0].after -= 1
        elif queue:
            failure = queue.popleft()
            return error_response(failure.status, failure.description, failure.retry_after)
        handler = self._methods.method(method)
        if handler is None:
            return error_response(404, "Not Found")
        try:
            result = await handler(params)
        except APIError as exc:
            return error_response(exc.status, exc.description)
        finally:
            self._feed.notify()
        return web.json_response({"ok": True, "result": result})

    async def _file(self, request: web.Request) -> web.Response:
        content = self._state.file_at(request.match_info["path"])
        if content is None:
            return web.Response(status=404, text="Not Found")
        return web.Response(body=content)

    # -- control routes (standalone use) -----------------------------------------------

    async def _control_message(self, request: web.Request) -> web.Response:
        body = await request.json()
        msg = self.message(
            int(body["user_id"]),
            str(body.get("text", "")),
            chat_id=body.get("chat_id"),
            reply_to=body.get("reply_to"),
        )
        return web.json_response(msg)

    async def _control_press(self, request: web.Request) -> web.Response:
        body = await request.json()
        sent = next(
            s
            for s in self.sent
            if s.chat_id == int(body["chat_id"]) and s.message_id == int(body["message_id"])
        )
        return web.json_response(self.press(sent, str(body["data"]), body.get("user_id")))

    async def _control_sent(self, request: web.Request) -> web.Response:
        return web.json_response(
            [
                {
                    "chat_id": s.chat_id,
                    "message_id": s.message_id,
                    "text": s.text,
                    "buttons": s.buttons,
                    "edits": s.edits,
                }
                for s in self.sent
            ]
        )


async def _serve(port: int, token: str) -> None:
    fake = FakeTelegram(token=token, port=port)
    url = await fake.start()
    print(f"listening on {url}", flush=True)
    try:
        await asyncio.Event().wait()
    finally:
        await fake.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--token", default="123456:TEST-token")
    args = parser.parse_args()
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(_serve(args.port, args.token))


if __name__ == "__main__":
    main()
