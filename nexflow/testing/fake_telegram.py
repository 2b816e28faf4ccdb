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

Run standalone (control routes under ``/_fake/``: ``POST message``, ``POST press``,
``GET sent``)::

    python -m nexflow.testing.fake_telegram --port 0
    # prints "listening on http://127.0.0.1:PORT"
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import itertools
import json
import re
import time
from collections import defaultdict, deque
from collections.abc import Callable
from dataclasses import dataclass, field
from html import unescape
from typing import Any

from aiohttp import web

from nexflow.testing.serve import serve

_TAGS = {"b", "strong", "i", "em", "u", "ins", "s", "strike", "del", "a", "code", "pre"}
_TAGS |= {"span", "tg-spoiler", "blockquote", "tg-emoji"}
_TAG = re.compile(r"<(/?)([a-zA-Z][a-zA-Z0-9-]*)((?:\s+[^<>]*)?)>")
_ENTITY = re.compile(r"&(?:lt|gt|amp|quot|#\d+|#x[0-9a-fA-F]+);")
MAX_TEXT = 4096


class HTMLError(ValueError):
    pass


def parse_html(text: str) -> str:
    """The visible text of a Telegram-HTML message; :class:`HTMLError` where the real server
    answers "can't parse entities" (unknown or unbalanced tags, a bare ``<`` or ``&``)."""
    stack: list[str] = []
    out: list[str] = []
    pos = 0
    while pos < len(text):
        ch = text[pos]
        if ch == "<":
            match = _TAG.match(text, pos)
            if match is None:
                raise HTMLError(f"Unsupported start tag at byte offset {pos}")
            closing, name = match.group(1), match.group(2).lower()
            if name not in _TAGS:
                raise HTMLError(f'Unsupported start tag "{name}" at byte offset {pos}')
            if closing:
                if not stack or stack[-1] != name:
                    raise HTMLError(f'Unmatched end tag at byte offset {pos}, expected "</{name}>"')
                stack.pop()
            else:
                stack.append(name)
            pos = match.end()
        elif ch == "&":
            match = _ENTITY.match(text, pos)
            if match is None:
                raise HTMLError(f"Unsupported HTML entity at byte offset {pos}")
            out.append(unescape(match.group(0)))
            pos = match.end()
        elif ch == ">":
            raise HTMLError(f"Unexpected end tag at byte offset {pos}")
        else:
            out.append(ch)
            pos += 1
    if stack:
        raise HTMLError(f'Can\'t find end tag corresponding to start tag "{stack[-1]}"')
    return "".join(out)


def utf16_len(text: str) -> int:
    return len(text.encode("utf-16-le")) // 2


@dataclass
class Sent:
    """One message the bot sent (and its later edits)."""

    chat_id: int
    message_id: int
    text: str
    parse_mode: str | None = None
    reply_markup: dict[str, Any] | None = None
    reply_to_message_id: int | None = None
    document: tuple[str, bytes] | None = None  # (file name, content) for sendDocument
    edits: list[str] = field(default_factory=list)

    @property
    def buttons(self) -> list[dict[str, Any]]:
        rows = (self.reply_markup or {}).get("inline_keyboard", [])
        return [button for row in rows for button in row]


@dataclass
class _Failure:
    status: int
    description: str
    retry_after: int | None
    after: int = 0  # calls to let through first


@dataclass
class FakeTelegram:
    """Start with :meth:`start`; pass :attr:`base_url` to
    ``TelegramAPIServer.from_base``."""

    token: str = "123456:TEST-token"
    username: str = "nexflow_bot"
    host: str = "127.0.0.1"
    port: int = 0
    offline: bool = False  # every request's connection is dropped, as on a network cut
    sent: list[Sent] = field(default_factory=list)
    calls: list[tuple[str, dict[str, Any]]] = field(default_factory=list)
    actions: list[tuple[int, str]] = field(default_factory=list)  # sendChatAction
    answers: list[tuple[str, str]] = field(default_factory=list)  # answerCallbackQuery
    stalls_served: int = 0
    dropped: int = 0  # requests refused while offline
    webhook_url: str = ""

    def __post_init__(self) -> None:
        self.bot_id = int(self.token.split(":", 1)[0])
        self._updates: list[dict[str, Any]] = []
        self._update_ids = itertools.count(1)
        self._message_ids: defaultdict[int, itertools.count[int]] = defaultdict(
            lambda: itertools.count(1)
        )
        self._chats: dict[int, dict[str, Any]] = {}
        self._blocked: set[int] = set()
        self._files: dict[str, tuple[str, bytes]] = {}
        self._failures: defaultdict[str, deque[_Failure]] = defaultdict(deque)
        self._stalls = 0
        self._changed = asyncio.Condition()
        self._closing = asyncio.Event()
        self._poll_generation = 0
        self._runner: web.AppRunner | None = None
        self._wakers: set[asyncio.Task[None]] = set()  # notify_all needs the lock: owned tasks

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
        self._closing.clear()
        self._runner, self.port = await serve(
            app, self.host, self.port, handler_cancellation=True, shutdown_timeout=1.0
        )
        return self.base_url

    async def stop(self) -> None:
        self._closing.set()
        async with self._changed:
            self._changed.notify_all()
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
        failures = [_Failure(status, description or default, retry_after) for _ in range(times)]
        failures[0].after = after
        self._failures[method].extend(failures)

    def stall_polls(self, times: int = 1) -> None:
        """The next ``times`` getUpdates calls never answer (until the client gives up)."""
        self._stalls += times

    def block(self, user_id: int) -> None:
        """The user blocked the bot: sending to their private chat answers 403."""
        self._blocked.add(user_id)

    # -- injecting updates -------------------------------------------------------------

    def user(
        self, user_id: int, first_name: str = "", username: str | None = None
    ) -> dict[str, Any]:
        user: dict[str, Any] = {
            "id": user_id,
            "is_bot": False,
            "first_name": first_name or f"User{user_id}",
        }
        if username:
            user["username"] = username
        return user

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
        chat = self._chat(chat_id if chat_id is not None else user_id, user_id)
        sender = self.user(user_id)
        if language_code:
            sender["language_code"] = language_code
        msg: dict[str, Any] = {
            "message_id": next(self._message_ids[chat["id"]]),
            "date": int(time.time()),
            "chat": chat,
            "from": sender,
        }
        if text:
            msg["text"] = text
            entities = _entities(text)
            if entities:
                msg["entities"] = entities
        if reply_to is not None:
            msg["reply_to_message"] = self._replied(chat, reply_to)
        msg.update(extra or {})
        self._push({"message": msg})
        return msg

    def press(self, sent: Sent, data: str, user_id: int | None = None) -> dict[str, Any]:
        """A person presses the inline button with callback ``data`` under ``sent``."""
        presser = user_id if user_id is not None else sent.chat_id
        query = {
            "id": str(next(self._update_ids) * 1000 + 7),
            "from": self.user(presser),
            "chat_instance": str(sent.chat_id),
            "data": data,
            "message": {
                "message_id": sent.message_id,
                "date": int(time.time()),
                "chat": self._chat(sent.chat_id, presser),
                "from": self._bot_user(),
                "text": parse_html(sent.text) if sent.parse_mode == "HTML" else sent.text,
            },
        }
        self._push({"callback_query": query})
        return query

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
        file_id = self._store_file(f"documents/{name}", content)
        doc = {
            "file_id": file_id,
            "file_unique_id": file_id[:8],
            "file_name": name,
            "mime_type": mime_type,
            "file_size": len(content),
        }
        extra: dict[str, Any] = {"document": doc}
        if caption:
            extra["caption"] = caption
        return self.message(user_id, chat_id=chat_id, extra=extra)

    def photo(
        self, user_id: int, content: bytes, *, caption: str = "", chat_id: int | None = None
    ) -> dict[str, Any]:
        file_id = self._store_file(f"photos/file_{len(self._files)}.jpg", content)
        size = {"file_id": file_id, "file_unique_id": file_id[:8], "width": 90, "height": 90}
        extra: dict[str, Any] = {"photo": [{**size, "file_size": len(content)}]}
        if caption:
            extra["caption"] = caption
        return self.message(user_id, chat_id=chat_id, extra=extra)

    # -- waiting -----------------------------------------------------------------------

    async def wait_sent(self, count: int = 1, within: float = 5.0) -> list[Sent]:
        """Wait until at least ``count`` messages were sent in total; return all of them."""
        await self.wait_for(lambda: len(self.sent) >= count, within)
        return list(self.sent)

    async def wait_for(self, predicate: Callable[[], bool], within: float = 5.0) -> None:
        """Wait until ``predicate()`` holds; it is checked after every API call."""
        async with asyncio.timeout(within), self._changed:
            await self._changed.wait_for(predicate)

    def pending_updates(self) -> int:
        return len(self._updates)

    # -- internals ---------------------------------------------------------------------

    def _bot_user(self) -> dict[str, Any]:
        return {
            "id": self.bot_id,
            "is_bot": True,
            "first_name": "Nexflow",
            "username": self.username,
        }

    def _chat(self, chat_id: int, user_id: int) -> dict[str, Any]:
        if chat_id not in self._chats:
            if chat_id < 0:
                self._chats[chat_id] = {"id": chat_id, "type": "supergroup", "title": "Team"}
            else:
                self._chats[chat_id] = {
                    "id": chat_id,
                    "type": "private",
                    "first_name": f"User{user_id}",
                }
        return self._chats[chat_id]

    def _replied(self, chat: dict[str, Any], message_id: int) -> dict[str, Any]:
        for sent in self.sent:
            if sent.chat_id == chat["id"] and sent.message_id == message_id:
                return {
                    "message_id": message_id,
                    "date": int(time.time()),
                    "chat": chat,
                    "from": self._bot_user(),
                    "text": sent.text,
                }
        return {"message_id": message_id, "date": int(time.time()), "chat": chat}

    def _store_file(self, path: str, content: bytes) -> str:
        file_id = f"F{len(self._files) + 1:04d}{abs(hash(path)) % 10**8:08d}"
        self._files[file_id] = (path, content)
        return file_id

    def _push(self, update: dict[str, Any]) -> None:
        update["update_id"] = next(self._update_ids)
        self._updates.append(update)
        self._notify()

    def _notify(self) -> None:
        async def wake() -> None:
            async with self._changed:
                self._changed.notify_all()

        with contextlib.suppress(RuntimeError):  # no running loop: nobody can be waiting
            task = asyncio.get_running_loop().create_task(wake())
            self._wakers.add(task)
            task.add_done_callback(self._wakers.discard)

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
            self._notify()
            assert request.transport is not None
            request.transport.close()
            return web.Response(status=503)  # never reaches the client
        if request.match_info["token"] != self.token:
            return _error(401, "Unauthorized")
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
            return _error(failure.status, failure.description, failure.retry_after)
        handler = getattr(self, f"_m_{method}", None)
        if handler is None:
            return _error(404, "Not Found")
        try:
            result = await handler(params)
        except _APIError as exc:
            return _error(exc.status, exc.description)
        finally:
            self._notify()
        return web.json_response({"ok": True, "result": result})

    async def _file(self, request: web.Request) -> web.Response:
        path = request.match_info["path"]
        for stored_path, content in self._files.values():
            if stored_path == path:
                return web.Response(body=content)
        return web.Response(status=404, text="Not Found")

    # -- Bot API methods ---------------------------------------------------------------

    async def _m_getMe(self, params: dict[str, Any]) -> dict[str, Any]:
        return {**self._bot_user(), "can_join_groups": True, "can_read_all_group_messages": False}

    async def _m_deleteWebhook(self, params: dict[str, Any]) -> bool:
        self.webhook_url = ""
        return True

    async def _m_setWebhook(self, params: dict[str, Any]) -> bool:
        self.webhook_url = str(params.get("url", ""))
        return True

    async def _m_getUpdates(self, params: dict[str, Any]) -> list[dict[str, Any]]:
        if self.webhook_url:
            raise _APIError(409, "Conflict: can't use getUpdates method while webhook is active")
        self._poll_generation += 1
        generation = self._poll_generation
        offset = int(params.get("offset", 0) or 0)
        if offset:
            self._updates = [u for u in self._updates if u["update_id"] >= offset]
        if self._stalls > 0:
            self._stalls -= 1
            self.stalls_served += 1
            await self._closing.wait()  # until the client disconnects or the server stops
            return []
        timeout = float(params.get("timeout", 0) or 0)
        limit = int(params.get("limit", 100) or 100)

        def ready() -> bool:
            return (
                bool(self._updates)
                or self._closing.is_set()
                or (self._poll_generation != generation)
            )

        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(timeout), self._changed:
                await self._changed.wait_for(ready)
        if self._poll_generation != generation:
            raise _APIError(409, "Conflict: terminated by other getUpdates request")
        return self._updates[:limit]

    def _target(self, params: dict[str, Any]) -> int:
        chat_id = int(params["chat_id"])
        if chat_id not in self._chats:
            raise _APIError(400, "Bad Request: chat not found")
        if chat_id in self._blocked:
            raise _APIError(403, "Forbidden: bot was blocked by the user")
        return chat_id

    def _check_text(self, text: str, parse_mode: str | None, limit: int = MAX_TEXT) -> None:
        visible = text
        if parse_mode == "HTML":
            try:
                visible = parse_html(text)
            except HTMLError as exc:
                raise _APIError(400, f"Bad Request: can't parse entities: {exc}") from exc
        if not visible.strip() and limit == MAX_TEXT:
            raise _APIError(400, "Bad Request: message text is empty")
        if utf16_len(visible) > limit:
            what = "message is too long" if limit == MAX_TEXT else "message caption is too long"
            raise _APIError(400, f"Bad Request: {what}")

    def _record(self, chat_id: int, text: str, params: dict[str, Any]) -> Sent:
        markup = params.get("reply_markup")
        reply = params.get("reply_parameters")
        sent = Sent(
            chat_id=chat_id,
            message_id=next(self._message_ids[chat_id]),
            text=text,
            parse_mode=params.get("parse_mode"),
            reply_markup=json.loads(markup) if isinstance(markup, str) else markup,
            reply_to_message_id=(json.loads(reply) if isinstance(reply, str) else reply or {}).get(
                "message_id"
            ),
        )
        self.sent.append(sent)
        return sent

    def _message_json(self, sent: Sent) -> dict[str, Any]:
        msg: dict[str, Any] = {
            "message_id": sent.message_id,
            "date": int(time.time()),
            "chat": self._chats[sent.chat_id],
            "from": self._bot_user(),
        }
        if sent.document is None:
            msg["text"] = parse_html(sent.text) if sent.parse_mode == "HTML" else sent.text
        if sent.reply_markup:
            msg["reply_markup"] = sent.reply_markup
        return msg

    async def _m_sendMessage(self, params: dict[str, Any]) -> dict[str, Any]:
        chat_id = self._target(params)
        text = str(params.get("text", ""))
        self._check_text(text, params.get("parse_mode"))
        return self._message_json(self._record(chat_id, text, params))

    def _find(self, params: dict[str, Any]) -> Sent:
        chat_id, message_id = int(params["chat_id"]), int(params["message_id"])
        for sent in self.sent:
            if sent.chat_id == chat_id and sent.message_id == message_id:
                return sent
        raise _APIError(400, "Bad Request: message to edit not found")

    async def _m_editMessageText(self, params: dict[str, Any]) -> dict[str, Any]:
        sent = self._find(params)
        text = str(params.get("text", ""))
        self._check_text(text, params.get("parse_mode"))
        if text == sent.text:
            raise _APIError(400, "Bad Request: message is not modified")
        sent.edits.append(text)
        sent.text, sent.parse_mode = text, params.get("parse_mode")
        markup = params.get("reply_markup")
        sent.reply_markup = json.loads(markup) if isinstance(markup, str) else markup
        return self._message_json(sent)

    async def _m_editMessageReplyMarkup(self, params: dict[str, Any]) -> dict[str, Any]:
        sent = self._find(params)
        markup = params.get("reply_markup")
        sent.reply_markup = json.loads(markup) if isinstance(markup, str) else markup
        return self._message_json(sent)

    async def _m_answerCallbackQuery(self, params: dict[str, Any]) -> bool:
        self.answers.append((str(params["callback_query_id"]), str(params.get("text", ""))))
        return True

    async def _m_sendChatAction(self, params: dict[str, Any]) -> bool:
        self.actions.append((self._target(params), str(params.get("action", ""))))
        return True

    async def _m_sendDocument(self, params: dict[str, Any]) -> dict[str, Any]:
        chat_id = self._target(params)
        ref = params.get("document")
        upload = params.get(ref.removeprefix("attach://")) if isinstance(ref, str) else ref
        if not isinstance(upload, web.FileField):
            raise _APIError(400, "Bad Request: there is no document in the request")
        caption = str(params.get("caption", ""))
        self._check_text(caption, params.get("parse_mode"), limit=1024)
        sent = self._record(chat_id, caption, params)
        sent.document = (upload.filename, upload.file.read())
        msg = self._message_json(sent)
        msg["document"] = {
            "file_id": "sent",
            "file_unique_id": "sent",
            "file_name": upload.filename,
        }
        return msg

    async def _m_getFile(self, params: dict[str, Any]) -> dict[str, Any]:
        file_id = str(params["file_id"])
        if file_id not in self._files:
            raise _APIError(400, "Bad Request: invalid file_id")
        path, content = self._files[file_id]
        return {
            "file_id": file_id,
            "file_unique_id": file_id[:8],
            "file_size": len(content),
            "file_path": path,
        }

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


class _APIError(Exception):
    def __init__(self, status: int, description: str) -> None:
        super().__init__(description)
        self.status = status
        self.description = description


def _error(status: int, description: str, retry_after: int | None = None) -> web.Response:
    body: dict[str, Any] = {"ok": False, "error_code": status, "description": description}
    if retry_after is not None:
        body["parameters"] = {"retry_after": retry_after}
    return web.json_response(body, status=status)


def _entities(text: str) -> list[dict[str, Any]]:
    """``mention`` and ``bot_command`` entities, as Telegram computes them (UTF-16)."""
    found: list[dict[str, Any]] = []
    for kind, pattern in (
        ("mention", r"@[A-Za-z0-9_]{5,32}"),
        ("bot_command", r"^/[A-Za-z0-9_]+(?:@[A-Za-z0-9_]+)?"),
    ):
        for match in re.finditer(pattern, text):
            offset = utf16_len(text[: match.start()])
            found.append({"type": kind, "offset": offset, "length": utf16_len(match.group(0))})
    return sorted(found, key=lambda e: int(e["offset"]))


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
