"""The fake Telegram's world: the bot, the chats it knows, the users who blocked it, the
files it hosts and every message it sent, with the JSON shapes the Bot API answers."""

from __future__ import annotations

import itertools
import json
import time
from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any

from nexflow.testing.fake_telegram_model import APIError, Sent, parse_html


@dataclass
class BotState:
    """Shared by the update feed (which injects messages) and the Bot API methods."""

    token: str
    username: str
    sent: list[Sent] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.bot_id = int(self.token.split(":", 1)[0])
        self.message_ids: defaultdict[int, itertools.count[int]] = defaultdict(
            lambda: itertools.count(1)
        )
        self.chats: dict[int, dict[str, Any]] = {}
        self.blocked: set[int] = set()
        self.files: dict[str, tuple[str, bytes]] = {}  # file id -> (path, content)

    def bot_user(self) -> dict[str, Any]:
        return {
            "id": self.bot_id,
            "is_bot": True,
            "first_name": "Nexflow",
            "username": self.username,
        }

    def chat(self, chat_id: int, user_id: int) -> dict[str, Any]:
        """The chat, made on first use: a supergroup below zero, else a private chat."""
        if chat_id not in self.chats:
            if chat_id < 0:
                self.chats[chat_id] = {"id": chat_id, "type": "supergroup", "title": "Team"}
            else:
                self.chats[chat_id] = {
                    "id": chat_id,
                    "type": "private",
                    "first_name": f"User{user_id}",
                }
        return self.chats[chat_id]

    def replied(self, chat: dict[str, Any], message_id: int) -> dict[str, Any]:
        """The ``reply_to_message`` of a message answering ``message_id`` in ``chat``."""
        for sent in self.sent:
            if sent.chat_id == chat["id"] and sent.message_id == message_id:
                return {
                    "message_id": message_id,
                    "date": int(time.time()),
                    "chat": chat,
                    "from": self.bot_user(),
                    "text": sent.text,
                }
        return {"message_id": message_id, "date": int(time.time()), "chat": chat}

    def store_file(self, path: str, content: bytes) -> str:
        file_id = f"F{len(self.files) + 1:04d}{abs(hash(path)) % 10**8:08d}"
        self.files[file_id] = (path, content)
        return file_id

    def file_at(self, path: str) -> bytes | None:
        for stored_path, content in self.files.values():
            if stored_path == path:
                return content
        return None

    def target(self, params: dict[str, Any]) -> int:
        """The ``chat_id`` the bot may send to, or the real server's refusal."""
        chat_id = int(params["chat_id"])
        if chat_id not in self.chats:
            raise APIError(400, "Bad Request: chat not found")
        if chat_id in self.blocked:
            raise APIError(403, "Forbidden: bot was blocked by the user")
        return chat_id

    def find(self, params: dict[str, Any]) -> Sent:
        chat_id, message_id = int(params["chat_id"]), int(params["message_id"])
        for sent in self.sent:
            if sent.chat_id == chat_id and sent.message_id == message_id:
                return sent
        raise APIError(400, "Bad Request: message to edit not found")

    def record(self, chat_id: int, text: str, params: dict[str, Any]) -> Sent:
        markup = params.get("reply_markup")
        reply = params.get("reply_parameters")
        sent = Sent(
            chat_id=chat_id,
            message_id=next(self.message_ids[chat_id]),
            text=text,
            parse_mode=params.get("parse_mode"),
            reply_markup=json.loads(markup) if isinstance(markup, str) else markup,
            reply_to_message_id=(json.loads(reply) if isinstance(reply, str) else reply or {}).get(
                "message_id"
            ),
        )
        self.sent.append(sent)
        return sent

    def message_json(self, sent: Sent) -> dict[str, Any]:
        msg: dict[str, Any] = {
            "message_id": sent.message_id,
            "date": int(time.time()),
            "chat": self.chats[sent.chat_id],
            "from": self.bot_user(),
        }
        if sent.document is None:
            msg["text"] = parse_html(sent.text) if sent.parse_mode == "HTML" else sent.text
        if sent.reply_markup:
            msg["reply_markup"] = sent.reply_markup
        return msg
