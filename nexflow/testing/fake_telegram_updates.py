"""The fake Telegram's update feed: updates injected by tests (messages, button presses,
documents, photos), the long-polling ``getUpdates`` (offset confirmation, ``timeout``,
409 when a newer poll or an active webhook supersedes it, scripted stalls), and the
condition every waiter in the tests watches."""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import time
from collections.abc import Callable
from typing import Any

from nexflow.testing.fake_telegram_model import APIError, Sent, entities, parse_html
from nexflow.testing.fake_telegram_state import BotState


class UpdateFeed:
    """Pending updates and their delivery by ``getUpdates``; ``webhook_url`` is set by
    ``setWebhook`` and makes polling answer 409, as on the real server."""

    def __init__(self, state: BotState) -> None:
        self._state = state
        self.updates: list[dict[str, Any]] = []
        self.webhook_url = ""
        self.stalls = 0
        self.stalls_served = 0
        self.conflicts = 0  # polls answered 409 (superseded, or a webhook is set)
        self._update_ids = itertools.count(1)
        self._changed = asyncio.Condition()
        self._closing = asyncio.Event()
        self._poll_generation = 0
        self._wakers: set[asyncio.Task[None]] = set()  # notify_all needs the lock: owned tasks

    def open(self) -> None:
        self._closing.clear()

    async def close(self) -> None:
        """End every poll in flight (the server is stopping)."""
        self._closing.set()
        async with self._changed:
            self._changed.notify_all()

    # -- waiting -----------------------------------------------------------------------

    def notify(self) -> None:
        """Wake the waiters (polls, ``wait_for``); callable without a running loop."""

        async def wake() -> None:
            async with self._changed:
                self._changed.notify_all()

        with contextlib.suppress(RuntimeError):  # no running loop: nobody can be waiting
            task = asyncio.get_running_loop().create_task(wake())
            self._wakers.add(task)
            task.add_done_callback(self._wakers.discard)

    async def wait_for(self, predicate: Callable[[], bool], within: float) -> None:
        async with asyncio.timeout(within), self._changed:
            await self._changed.wait_for(predicate)

    # -- injecting updates -------------------------------------------------------------

    def push(self, update: dict[str, Any]) -> None:
        update["update_id"] = next(self._update_ids)
        self.updates.append(update)
        self.notify()

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
        state = self._state
        chat = state.chat(chat_id if chat_id is not None else user_id, user_id)
        sender = self.user(user_id)
        if language_code:
            sender["language_code"] = language_code
        msg: dict[str, Any] = {
            "message_id": next(state.message_ids[chat["id"]]),
            "date": int(time.time()),
            "chat": chat,
            "from": sender,
        }
        if text:
            msg["text"] = text
            found = entities(text)
            if found:
                msg["entities"] = found
        if reply_to is not None:
            msg["reply_to_message"] = state.replied(chat, reply_to)
        msg.update(extra or {})
        self.push({"message": msg})
        return msg

    def press(self, sent: Sent, data: str, user_id: int | None = None) -> dict[str, Any]:
        presser = user_id if user_id is not None else sent.chat_id
        query = {
            "id": str(next(self._update_ids) * 1000 + 7),
            "from": self.user(presser),
            "chat_instance": str(sent.chat_id),
            "data": data,
            "message": {
                "message_id": sent.message_id,
                "date": int(time.time()),
                "chat": self._state.chat(sent.chat_id, presser),
                "from": self._state.bot_user(),
                "text": parse_html(sent.text) if sent.parse_mode == "HTML" else sent.text,
            },
        }
        self.push({"callback_query": query})
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
        file_id = self._state.store_file(f"documents/{name}", content)
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
        file_id = self._state.store_file(f"photos/file_{len(self._state.files)}.jpg", content)
        size = {"file_id": file_id, "file_unique_id": file_id[:8], "width": 90, "height": 90}
        extra: dict[str, Any] = {"photo": [{**size, "file_size": len(content)}]}
        if caption:
            extra["caption"] = caption
        return self.message(user_id, chat_id=chat_id, extra=extra)

    # -- getUpdates --------------------------------------------------------------------

    async def get_updates(self, params: dict[str, Any]) -> list[dict[str, Any]]:
        if self.webhook_url:
            self.conflicts += 1
            raise APIError(409, "Conflict: can't use getUpdates method while webhook is active")
        self._poll_generation += 1
        generation = self._poll_generation
        offset = int(params.get("offset", 0) or 0)
        if offset:
            self.updates = [u for u in self.updates if u["update_id"] >= offset]
        if self.stalls > 0:
            self.stalls -= 1
            self.stalls_served += 1
            await self._closing.wait()  # until the client disconnects or the server stops
            return []
        timeout = float(params.get("timeout", 0) or 0)
        limit = int(params.get("limit", 100) or 100)

        def ready() -> bool:
            return (
                bool(self.updates)
                or self._closing.is_set()
                or (self._poll_generation != generation)
            )

        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(timeout), self._changed:
                await self._changed.wait_for(ready)
        if self._poll_generation != generation:
            self.conflicts += 1
            raise APIError(409, "Conflict: terminated by other getUpdates request")
        return self.updates[:limit]
