"""The Bot API methods the fake Telegram answers, one ``m_<method>`` each: ``getMe``,
``getUpdates``, ``setWebhook`` / ``deleteWebhook``, ``sendMessage``, ``editMessageText``,
``editMessageReplyMarkup``, ``answerCallbackQuery``, ``sendChatAction``, ``sendDocument``
and ``getFile``. They validate like the real server and raise :class:`APIError` where it
refuses."""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from typing import Any

from aiohttp import web

from nexflow.testing.fake_telegram_model import MAX_CAPTION, APIError, check_text
from nexflow.testing.fake_telegram_state import BotState
from nexflow.testing.fake_telegram_updates import UpdateFeed

Method = Callable[[dict[str, Any]], Awaitable[Any]]


class BotAPI:
    """Records what the bot did besides sending messages: chat actions and callback
    answers."""

    def __init__(self, state: BotState, feed: UpdateFeed) -> None:
        self._state = state
        self._feed = feed
        self.actions: list[tuple[int, str]] = []  # sendChatAction
        self.answers: list[tuple[str, str]] = []  # answerCallbackQuery

    def method(self, name: str) -> Method | None:
        handler: Method | None = getattr(self, f"m_{name}", None)
        return handler

    async def m_getMe(self, params: dict[str, Any]) -> dict[str, Any]:
        bot = self._state.bot_user()
        return {**bot, "can_join_groups": True, "can_read_all_group_messages": False}

    async def m_getUpdates(self, params: dict[str, Any]) -> list[dict[str, Any]]:
        return await self._feed.get_updates(params)

    async def m_deleteWebhook(self, params: dict[str, Any]) -> bool:
        self._feed.webhook_url = ""
        return True

    async def m_setWebhook(self, params: dict[str, Any]) -> bool:
        self._feed.webhook_url = str(params.get("url", ""))
        return True

    async def m_sendMessage(self, params: dict[str, Any]) -> dict[str, Any]:
        chat_id = self._state.target(params)
        text = str(params.get("text", ""))
        check_text(text, params.get("parse_mode"))
        return self._state.message_json(self._state.record(chat_id, text, params))

    async def m_editMessageText(self, params: dict[str, Any]) -> dict[str, Any]:
        sent = self._state.find(params)
        text = str(params.get("text", ""))
        check_text(text, params.get("parse_mode"))
        if text == sent.text:
            raise APIError(400, "Bad Request: message is not modified")
        sent.edits.append(text)
        sent.text, sent.parse_mode = text, params.get("parse_mode")
        markup = params.get("reply_markup")
        sent.reply_markup = json.loads(markup) if isinstance(markup, str) else markup
        return self._state.message_json(sent)

    async def m_editMessageReplyMarkup(self, params: dict[str, Any]) -> dict[str, Any]:
        sent = self._state.find(params)
        markup = params.get("reply_markup")
        sent.reply_markup = json.loads(markup) if isinstance(markup, str) else markup
        return self._state.message_json(sent)

    async def m_answerCallbackQuery(self, params: dict[str, Any]) -> bool:
        self.answers.append((str(params["callback_query_id"]), str(params.get("text", ""))))
        return True

    async def m_sendChatAction(self, params: dict[str, Any]) -> bool:
        self.actions.append((self._state.target(params), str(params.get("action", ""))))
        return True

    async def m_sendDocument(self, params: dict[str, Any]) -> dict[str, Any]:
        chat_id = self._state.target(params)
        ref = params.get("document")
        upload = params.get(ref.removeprefix("attach://")) if isinstance(ref, str) else ref
        if not isinstance(upload, web.FileField):
            raise APIError(400, "Bad Request: there is no document in the request")
        caption = str(params.get("caption", ""))
        check_text(caption, params.get("parse_mode"), limit=MAX_CAPTION)
        sent = self._state.record(chat_id, caption, params)
        sent.document = (upload.filename, upload.file.read())
        msg = self._state.message_json(sent)
        msg["document"] = {
            "file_id": "sent",
            "file_unique_id": "sent",
            "file_name": upload.filename,
        }
        return msg

    async def m_getFile(self, params: dict[str, Any]) -> dict[str, Any]:
        file_id = str(params["file_id"])
        if file_id not in self._state.files:
            raise APIError(400, "Bad Request: invalid file_id")
        path, content = self._state.files[file_id]
        return {
            "file_id": file_id,
            "file_unique_id": file_id[:8],
            "file_size": len(content),
            "file_path": path,
        }
